"""The read-only subcommands of ``loopwise``: list runs, show one, export it to CSV.

They only read the record; :mod:`loopwise.cli` puts them together with ``fit``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from loopwise.record import RunReader, list_runs
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
        print(f"no runs under {args.root}")
        return 0
    print(f"{'name':32s} {'status':11s} {'started':19s} {'duration':>8s} {'steps':>8s}  "
          "last values | best")
    for info in runs:
        started = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.start_time))
                   if info.start_time else "-")
        last = ", ".join(f"{k}={v:.4g}" for k, v in list(info.last.items())[:4])
        print(f"{info.name:32s} {info.status:11s} {started:19s} "
              f"{_duration(info.duration):>8s} {run_steps(info):>8s}  {last}"
              f" | {run_best(info)}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    reader = RunReader(resolve_run(args.run, root=args.root))
    info = reader.info
    summary = reader.summary()
    print(f"run      {info['name']}  ({info['status']})")
    print(f"folder   {reader.path}")
    print(f"started  {info.get('started_at', '-')}   duration {_duration(summary.duration)}")
    print(f"command  {' '.join(info.get('argv', []))}")
    config = reader.config()
    if config:
        print("config   " + ", ".join(f"{k}={v}" for k, v in config.items()))
    for key, value in summary.last.items():
        print(f"  {key:24s} {value:.6g}  ({len(reader.series(key))} points)")
    events = reader.events(level="warning") + reader.events(level="error")
    for event in sorted(events, key=lambda e: e.time)[-10:]:
        print(f"  [{event.level}] {event.kind}: {event.message}")
    print(details(reader))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from loopwise.view.export_formats import export_run

    run = resolve_run(args.run, root=args.root)
    fmt = args.format or (args.output.rsplit(".", 1)[-1] if args.output and args.output.rsplit(
        ".", 1)[-1] in ("csv", "jsonl", "parquet") else "csv")
    out = export_run(RunReader(run), args.output or f"{run.name}.{fmt}", fmt=fmt)
    print(out)
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
