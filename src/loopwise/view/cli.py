"""The read-only subcommands of ``loopwise``: list runs, show one, export it to CSV.

They only read the record; :mod:`loopwise.cli` puts them together with ``fit``. Everything they
print from the record (names, messages, config values) passes through ``printable``: escape
sequences in a metric or run name are shown, never sent to the terminal. A run folder whose
files cannot be read is listed by ``runs`` as ``corrupt`` with the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loopwise.utils.text import printable
from loopwise.view.cli_views import RUN_HELP, add_run_query_options, add_view_parsers
from loopwise.view.resolve import DEFAULT_ROOT, resolve_run

# Each verb imports what it uses when it runs: ``loopwise --help`` and every other verb start
# without the reader, numpy or the run table (issue 25: start-up <= 0.3 s).


def _cmd_runs(args: argparse.Namespace) -> int:
    from loopwise.view.runs_table import query_rows
    from loopwise.view.runs_text import (
        check_columns,
        default_columns,
        render_runs,
        runs_csv,
        runs_json,
        terminal,
    )

    rows, everything = query_rows(args.root, where=args.where, sort=args.sort,
                                  descending=args.desc, limit=args.limit)
    if not everything:
        print(f"no runs under {printable(args.root)}")
        return 0
    columns = (check_columns([c.strip() for c in args.columns.split(",") if c.strip()],
                             everything) if args.columns else default_columns(everything))
    if args.format == "csv":
        sys.stdout.write(runs_csv(rows, columns))
    elif args.format == "json":
        print(runs_json(rows, columns if args.columns else None))
    else:
        width, colour = terminal(sys.stdout, width=args.width, colour=args.color)
        print(render_runs(rows, columns, width=width, colour=colour))
        if not rows:
            print(f"(no run of {len(everything)} matches --where)")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from loopwise.record.intact import intact
    from loopwise.record.reader import RunReader
    from loopwise.view.run_facts import details, metric_keys
    from loopwise.view.runs_text import duration_text

    reader = intact(RunReader(resolve_run(args.run, root=args.root)))
    info = reader.info
    summary = reader.summary()
    config = reader.config()  # read everything first: a corrupt file is one error, no output
    last = {k: v for k, v in summary.last.items() if k in reader.keys()}
    stats = reader.stats(keys=metric_keys(reader))  # each series read once, for both
    counts = {key: stats[key].count if key in stats else len(reader.series(key))
              for key in last}
    argv = info.get("argv")
    lines = [f"run      {summary.name}  ({info['status']})", f"folder   {reader.path}",
             f"started  {info.get('started_at', '-')}   duration {duration_text(summary.duration)}",
             "command  " + (" ".join(map(str, argv)) if isinstance(argv, list) else "-")]
    if config:
        lines.append("config   " + ", ".join(f"{k}={v}" for k, v in config.items()))
    lines += [f"  {key:24s} {value:.6g}  ({counts[key]} points)"
              for key, value in last.items()]
    lines += [f"DAMAGED  {d}" for d in reader.damage]
    print("\n".join(printable(line) for line in lines))
    print(details(reader, stats=stats))  # statistics and the last events
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from loopwise.record.intact import intact
    from loopwise.record.reader import RunReader
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
    p = sub.add_parser("runs", help="the run table: config and final/best metrics per run",
                       description="The runs under ROOT, newest first: name, status, start, "
                                   "duration, steps, the config keys that differ and each "
                                   "metric's final and best value (validation first; a best "
                                   "only for names that state a direction: loss, acc, f1, "
                                   "...). Keys: name, status, start, end, duration, steps, "
                                   "a config key (optimizer.lr), a metric (val_loss: its final "
                                   "value; best.val_loss, final.val_loss).")
    p.add_argument("root", nargs="?", default=DEFAULT_ROOT, help="the runs folder (./runs)")
    add_run_query_options(p)
    p.add_argument("--sort", metavar="KEY", default=None,
                   help="order by this key, ascending (runs without it last)")
    p.add_argument("--desc", action="store_true", help="with --sort: descending")
    p.add_argument("--columns", metavar="KEY,...", default=None,
                   help="the columns to show, comma-separated (name is always first)")
    p.add_argument("--limit", metavar="N", type=int, default=None,
                   help="show at most N runs (after --where and --sort)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), or csv / json for scripts")
    p.add_argument("--width", type=int, default=None,
                   help="fit the table to this many columns (default: the terminal's; no "
                        "limit when the output is not a terminal)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colours: on a terminal (auto; NO_COLOR turns them off), always or "
                        "never")
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
