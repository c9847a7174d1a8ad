"""The ``loopwise`` verbs that look at runs beyond listing them: ``compare``, ``report``,
``doctor`` and ``ui``. Each only reads the record (``report`` writes the report file)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from loopwise.record import RunReader
from loopwise.record.intact import intact
from loopwise.utils.text import printable
from loopwise.view.resolve import DEFAULT_ROOT, resolve_run


def _reader(args: argparse.Namespace, run: str) -> RunReader:
    return RunReader(resolve_run(run, root=args.root))


def _cmd_compare(args: argparse.Namespace) -> int:
    from loopwise.view.compare import render_compare

    print(render_compare([_reader(args, r) for r in args.runs]))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from loopwise.view.report import write_report

    run = resolve_run(args.run, root=args.root)
    print(printable(write_report(run, args.output)))
    for damage in intact(RunReader(run)).damage:  # the page says it too, among the events
        print(printable(f"loopwise report: left out: {damage}"), file=sys.stderr)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from loopwise.view.doctor import diagnose, render_diagnosis

    diagnosis = diagnose(_reader(args, args.run))
    print(render_diagnosis(diagnosis))
    return 0 if diagnosis.healthy else 1


def _cmd_ui(args: argparse.Namespace) -> int:
    from loopwise.view.dashboard.serve import serve

    serve(args.root_dir, host=args.host, port=args.port, token=args.token,
          allow_hosts=args.allow_host)
    return 0


def _root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=DEFAULT_ROOT,
                   help="the runs folder where RUN names and prefixes are looked up "
                        "(default: ./runs)")


RUN_HELP = "a run folder, a run name under --root, or a unique prefix of one"


def add_view_parsers(sub: Any) -> None:
    """Register ``compare``, ``report``, ``doctor`` and ``ui`` on ``sub``."""
    p = sub.add_parser("compare", help="config differences and final/best metrics of runs",
                       description="Compare two or more runs: the config keys that differ and "
                                   "each metric's final and best value, side by side.")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP)
    _root_option(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="write a self-contained HTML report of a run",
                       description="Write one HTML file with the run's metric curves, system "
                                   "charts, events, config and per-epoch table; it opens "
                                   "offline, with no server.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("-o", "--output", default=None,
                   help="the HTML file to write (default: RUN/report.html)")
    _root_option(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("doctor", help="say what went wrong in a run and what to try",
                       description="Replay the run's record through the health detectors and "
                                   "read how it ended. Exit code 0: healthy; 1: problems "
                                   "found; 2: bad input.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _root_option(p)
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("ui", help="serve the live dashboard over a runs folder",
                       description="A read-only local web dashboard of the runs under ROOT "
                                   "(needs pip install 'loopwise[ui]').")
    p.add_argument("root_dir", nargs="?", default=DEFAULT_ROOT, metavar="ROOT",
                   help="the runs folder (default: ./runs); one that does not exist yet is "
                        "waited for")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; another address is reachable "
                        "from the network: use --token)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free)")
    p.add_argument("--token", default=None,
                   help="require this token (header 'Authorization: Bearer T' or ?token=T)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another Host header name to accept (repeatable; default: "
                        "localhost, 127.0.0.1, ::1 and the bound address)")
    p.set_defaults(func=_cmd_ui)
