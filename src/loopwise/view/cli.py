"""The read-only subcommands of ``loopwise``: list runs, show one, export it to CSV.

They only read the record; :mod:`loopwise.cli` puts them together with ``fit``. Everything they
print from the record (names, messages, config values) passes through ``printable``: escape
sequences in a metric or run name are shown, never sent to the terminal. A run folder whose
files cannot be read is listed by ``runs`` as ``corrupt`` with the reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from loopwise.record import RunReader, list_runs
from loopwise.record.intact import intact
from loopwise.utils.table import render_table
from loopwise.utils.text import printable
from loopwise.view.cli_views import RUN_HELP, add_view_parsers
from loopwise.view.resolve import DEFAULT_ROOT, resolve_run
from loopwise.view.run_facts import details, run_best, run_steps


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def _cmd_runs(args: argparse.Namespace) -> int:
    runs = list_runs(args.root)
    if not runs:
        print(f"no runs under {printable(args.root)}")
        return 0
    rows = []
    for info in runs:
        started = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.start_time))
                   if info.start_time else "-")
        last = ", ".join(f"{k}={v:.4g}" for k, v in list(info.last.items())[:4])
        facts = (info.problem if info.problem is not None
                 else f"{last} | {run_best(info)}")
        rows.append((info.name, info.status, started, _duration(info.duration),
                     run_steps(info) if info.problem is None else "-", facts))
    print(render_table(rows, header=("name", "status", "started", "duration", "steps",
                                     "last values | best"), align="lllrrl", rule=None))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    reader = intact(RunReader(resolve_run(args.run, root=args.root)))
    info = reader.info
    summary = reader.summary()
    config = reader.config()  # read everything first: a corrupt file is one error, no output
    last = {k: v for k, v in summary.last.items() if k in reader.keys()}
    counts = {key: len(reader.series(key)) for key in last}
    argv = info.get("argv")
    lines = [f"run      {summary.name}  ({info['status']})", f"folder   {reader.path}",
             f"started  {info.get('started_at', '-')}   duration {_duration(summary.duration)}",
             "command  " + (" ".join(map(str, argv)) if isinstance(argv, list) else "-")]
    if config:
        lines.append("config   " + ", ".join(f"{k}={v}" for k, v in config.items()))
    lines += [f"  {key:24s} {value:.6g}  ({counts[key]} points)"
              for key, value in last.items()]
    lines += [f"DAMAGED  {d}" for d in reader.damage]
    print("\n".join(printable(line) for line in lines))
    print(details(reader))  # statistics and the last events
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from loopwise.view.export_formats import FORMATS, export_run

    fmt = args.format or "csv"
    if args.format is None and args.output is not None:
        fmt = Path(args.output).suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise ValueError(f"{args.output}: unknown file extension "
                             f"{Path(args.output).suffix or '(none)'!r}; known: "
                             f"{', '.join('.' + f for f in FORMATS)} (or give --format)")
    run = resolve_run(args.run, root=args.root)
    reader = intact(RunReader(run))
    out = export_run(reader, args.output or f"{run.name}.{fmt}", fmt=fmt)
    print(printable(out))
    for damage in reader.damage:  # written without the damaged parts: say which
        print(printable(f"loopwise export: left out: {damage}"), file=sys.stderr)
    return 0


def add_record_parsers(sub: Any) -> None:
    """Register the read-only subcommands (``runs``, ``show``, ``export``, and ``compare``,
    ``report``, ``doctor``, ``ui`` from :mod:`loopwise.view.cli_views`) on ``sub``."""
    p = sub.add_parser("runs", help="list the runs under a root, newest first",
                       description="List the runs under ROOT, newest first: name, status, "
                                   "start, duration, steps, last and best metrics.")
    p.add_argument("root", nargs="?", default=DEFAULT_ROOT, help="the runs folder (./runs)")
    p.set_defaults(func=_cmd_runs)
    p = sub.add_parser("show", help="show one run: status, config, statistics, events",
                       description="Show one run: status, config, per-metric statistics and "
                                   "its last events.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--root", default=DEFAULT_ROOT, help="the runs folder for RUN names (./runs)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("export", help="export a run's series (one row per step, one column "
                                      "per metric) to CSV, JSON lines or Parquet",
                       description="Write a run's scalar series as one row per step and one "
                                   "column per metric. Parquet needs pip install "
                                   "'loopwise[parquet]'.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("output", nargs="?", default=None,
                   help="the file to write (default: <run name>.<format> here)")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default=None,
                   help="default: from OUTPUT's suffix, else csv")
    p.add_argument("--root", default=DEFAULT_ROOT, help="the runs folder for RUN names (./runs)")
    p.set_defaults(func=_cmd_export)
    add_view_parsers(sub)
