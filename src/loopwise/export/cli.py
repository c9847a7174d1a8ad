"""The ``loopwise`` verbs of the exporters: ``dashboards``, and ``export RUN --to ...`` (a
backfill into TensorBoard or MLflow) added to the CSV ``export`` verb of :mod:`loopwise.view.cli`.

    loopwise export RUN --to tensorboard DIR
    loopwise export RUN --to mlflow URI [--experiment NAME]
    loopwise dashboards [--out DIR] [--target HOST:PORT ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopwise.utils.text import printable

if TYPE_CHECKING:
    from loopwise.export.base import Exporter

BACKENDS = ("tensorboard", "mlflow")


def _exporter(kind: str, target: str, experiment: str | None) -> Exporter:
    if kind == "tensorboard":
        from loopwise.export.tensorboard import TensorBoardExporter

        return TensorBoardExporter(target)
    import os

    from loopwise.export.mlflow import HTTP_ENV, MLflowExporter

    for key, value in HTTP_ENV.items():  # this CLI process's own: failures seen, not hidden
        os.environ.setdefault(key, value)
    return MLflowExporter(target, experiment=experiment or "loopwise")


def _cmd_backfill(args: argparse.Namespace, csv: Callable[[argparse.Namespace], int]) -> int:
    if args.to is None:
        if args.experiment is not None:
            raise ValueError("--experiment goes with --to mlflow URI")
        return csv(args)  # a file: CSV, JSON lines or Parquet
    kind, target = args.to
    if kind not in BACKENDS:
        raise ValueError(f"--to takes one of {', '.join(BACKENDS)} and a target, got {kind!r}")
    if args.output is not None or args.format is not None:
        raise ValueError(f"give either OUTPUT/--format (a file) or --to (a mirror), not both "
                         f"(got {args.output or args.format!r})")
    if args.experiment is not None and kind != "mlflow":
        raise ValueError("--experiment goes with --to mlflow URI")
    from loopwise.export.backfill import backfill
    from loopwise.record.intact import intact
    from loopwise.record.reader import RunReader
    from loopwise.view.resolve import resolve_run

    run = resolve_run(args.run, root=args.root)
    exporter = _exporter(kind, target, args.experiment)
    stats = backfill(run, exporter)
    for damage in intact(RunReader(run)).damage:  # left out of the mirror: say which
        print(printable(f"loopwise export: left out: {damage}"), file=sys.stderr)
    where = f"MLflow run {getattr(exporter, 'run_id', '')} at {target}" if kind == "mlflow" \
        else target
    print(f"mirrored {stats.delivered} points to {printable(where)}")
    if stats.dropped or stats.undelivered:
        print(f"loopwise export: {stats.dropped + stats.undelivered} points not delivered",
              file=sys.stderr)
        return 1
    return 0


def extend_export_parser(sub: Any) -> None:
    """Add ``--to KIND TARGET`` and ``--experiment`` to the ``export`` verb already registered
    on ``sub``: a mirror instead of a file."""
    parser = sub.choices["export"]
    parser.add_argument("--to", nargs=2, metavar=("KIND", "TARGET"),
                        help="mirror the run instead: tensorboard DIR, or mlflow URI "
                             "(sqlite:///abs/path.db or http://host:port)")
    parser.add_argument("--experiment", help="the MLflow experiment (default: loopwise)")
    csv = parser.get_default("func")
    parser.set_defaults(func=lambda args: _cmd_backfill(args, csv))


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from loopwise.export.dashboards import write_dashboards
    from loopwise.export.prometheus import DEFAULT_PORT

    port = DEFAULT_PORT if args.port is None else args.port
    files = write_dashboards(args.out, targets=args.target or [f"127.0.0.1:{port}"])
    for path in files:
        print(printable(path))
    print(f"start them with: cd {printable(args.out)} && docker compose up -d  "
          "(Prometheus http://127.0.0.1:9090, Grafana http://127.0.0.1:3000)")
    return 0


def add_export_parsers(sub: Any) -> None:
    """Register ``dashboards`` and extend ``export`` (call after the view verbs)."""
    extend_export_parser(sub)
    p = sub.add_parser("dashboards", help="write Prometheus, alert rules, a Grafana dashboard "
                                          "and a docker-compose.yml for the live exporter")
    p.add_argument("--out", default="loopwise-dashboards", help="the folder to write")
    p.add_argument("--target", action="append", metavar="HOST:PORT",
                   help="an exporter to scrape (repeatable)")
    p.add_argument("--port", type=int, default=None,  # PrometheusExporter's (imported late)
                   help="the exporter's port when no --target is given (default: the "
                        "PrometheusExporter's, 9109)")
    p.set_defaults(func=_cmd_dashboards)
