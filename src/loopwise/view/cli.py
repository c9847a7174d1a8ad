"""The read-only subcommands of ``loopwise``: list runs, show one, export it to CSV.

They only read the record; :mod:`loopwise.cli` puts them together with ``fit``. Everything they
print from the record (names, messages, config values) passes through ``printable``: escape
sequences in a metric or run name are shown, never sent to the terminal. A run folder whose
files cannot be read is listed by ``runs`` as ``corrupt`` with the reason.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from loopwise.record import RunReader, list_runs
from loopwise.record.table import render_table
from loopwise.record.text import printable


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
        rows.append((info.name, info.status, started, _duration(info.duration),
                     info.problem if info.problem is not None else last))
    print(render_table(rows, header=("name", "status", "started", "duration", "last values"),
                       align="lllr", rule=None))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    reader = RunReader(args.run)
    info = reader.info
    summary = reader.summary()
    config = reader.config()  # read everything first: a corrupt file is one error, no output
    counts = {key: len(reader.series(key)) for key in summary.last}
    events = reader.events(level="warning") + reader.events(level="error")
    argv = info.get("argv")
    lines = [f"run      {summary.name}  ({info['status']})", f"folder   {reader.path}",
             f"started  {info.get('started_at', '-')}   duration {_duration(summary.duration)}",
             "command  " + (" ".join(map(str, argv)) if isinstance(argv, list) else "-")]
    if config:
        lines.append("config   " + ", ".join(f"{k}={v}" for k, v in config.items()))
    lines += [f"  {key:24s} {value:.6g}  ({counts[key]} points)"
              for key, value in summary.last.items()]
    lines += [f"  [{event.level}] {event.kind}: {event.message}"
              for event in sorted(events, key=lambda e: e.time)[-10:]]
    print("\n".join(printable(line) for line in lines))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    out = RunReader(args.run).to_csv(args.output)
    print(out)
    return 0


def add_record_parsers(sub: Any) -> None:
    """Register the read-only subcommands (``runs``, ``show``, ``export``) on ``sub``."""
    p = sub.add_parser("runs", help="list the runs under a root, newest first")
    p.add_argument("root", nargs="?", default="runs")
    p.set_defaults(func=_cmd_runs)
    p = sub.add_parser("show", help="show one run: status, config, last values, warnings")
    p.add_argument("run", help="the run folder")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("export", help="export a run's series to CSV (one row per step)")
    p.add_argument("run", help="the run folder")
    p.add_argument("output", help="the CSV file to write")
    p.set_defaults(func=_cmd_export)
