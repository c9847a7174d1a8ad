"""The read-only subcommands of ``loopwise``: list runs, show one, export it to CSV.

They only read the record; :mod:`loopwise.cli` puts them together with ``fit``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from loopwise.record import RunReader, list_runs


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
    print(f"{'name':32s} {'status':11s} {'started':19s} {'duration':>8s}  last values")
    for info in runs:
        started = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.start_time))
                   if info.start_time else "-")
        last = ", ".join(f"{k}={v:.4g}" for k, v in list(info.last.items())[:4])
        print(f"{info.name:32s} {info.status:11s} {started:19s} "
              f"{_duration(info.duration):>8s}  {last}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    reader = RunReader(args.run)
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
