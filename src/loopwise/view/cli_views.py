"""The ``loopwise`` verbs that look at runs beyond listing them: ``compare``, ``report``,
``doctor`` and ``ui``. Each only reads the record (``report`` writes the report file)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from loopwise.utils.text import printable
from loopwise.view.resolve import DEFAULT_ROOT, resolve_run

if TYPE_CHECKING:  # each verb imports the reader when it runs (a quick start-up)
    from loopwise.record.reader import RunReader


def _reader(args: argparse.Namespace, run: str) -> RunReader:
    from loopwise.record.reader import RunReader

    return RunReader(resolve_run(run, root=args.root))


def _cmd_compare(args: argparse.Namespace) -> int:
    import sys

    from loopwise.view.compare import render_compare
    from loopwise.view.runs_table import RunTable, query_rows
    from loopwise.view.runs_text import terminal

    if args.where is None and len(args.runs) < 2:
        raise ValueError(f"compare needs two or more runs (or --where EXPR), got "
                         f"{len(args.runs)}")
    if args.where is not None:
        rows, _ = query_rows(args.root, where=args.where)
        if args.runs:
            raise ValueError("give runs or --where, not both")
        if len(rows) < 2:
            raise ValueError(f"--where {args.where!r} matches {len(rows)} run(s) under "
                             f"{args.root}; compare needs two or more")
    else:
        paths = [resolve_run(r, root=args.root) for r in args.runs]
        table = RunTable(paths[0].parent)
        rows = [table.row(p) for p in paths]
        for row in rows:
            if row.status == "corrupt":
                raise ValueError(row.problem)
            if row.problem is not None:  # a damaged config: compared without it, and said
                print(printable(f"loopwise compare: {row.name}: {row.problem}"),
                      file=sys.stderr)
    width, _ = terminal(sys.stdout, width=args.width)
    print(render_compare(rows, width=width))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from loopwise.record.intact import intact
    from loopwise.record.reader import RunReader
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


def add_run_query_options(p: argparse.ArgumentParser) -> None:
    """``--where EXPR`` (:mod:`loopwise.view.where`) on ``p``."""
    p.add_argument("--where", metavar="EXPR", default=None,
                   help="keep the runs matching EXPR, e.g. \"lr < 0.01 and status == "
                        "finished\" (< <= > >= == !=, and, or, not, parentheses, 'text', "
                        "numbers, keys such as optimizer.lr or best.val_loss)")


RUN_HELP = "a run folder, a run name under --root, or a unique prefix of one"


def add_view_parsers(sub: Any) -> None:
    """Register ``compare``, ``report``, ``doctor`` and ``ui`` on ``sub``."""
    p = sub.add_parser("compare", help="which run won each metric, and the config that differs",
                       description="Compare two or more runs (named, or chosen with --where): "
                                   "each metric's final and best value with the best run "
                                   "marked *, the config keys that differ, then the ones in "
                                   "common.")
    p.add_argument("runs", nargs="*", metavar="RUN", help=RUN_HELP)
    _root_option(p)
    add_run_query_options(p)
    p.add_argument("--width", type=int, default=None,
                   help="fit the tables to this many columns (default: the terminal's)")
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
