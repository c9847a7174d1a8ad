"""The ``loopwise`` command: ``runs``, ``show``, ``export``, ``compare``, ``report``, ``doctor``
and ``ui`` read run records (:mod:`loopwise.view.cli`); ``fit`` trains a model
(:mod:`loopwise.train.fit.cli`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from loopwise.export.cli import add_export_parsers
from loopwise.train.fit.cli import add_fit_parser
from loopwise.utils.text import printable, printable_lines
from loopwise.view.cli import add_record_parsers


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors echo arguments through ``printable`` (argparse
    writes an unrecognized argument as it is; its subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loopwise",
        description="Read loopwise run records (runs, show, compare, export, report, doctor, "
                    "ui) and train models (fit).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_record_parsers(sub)
    add_export_parsers(sub)
    add_fit_parser(sub)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush of a closed pipe does not
    print a second error."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured in a test): nothing to flush
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a user error is one line on stderr and exit code 2 (CLI arguments
    echoed in it pass through ``printable``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # an optional positional after an option (export RUN --root R out.csv): argparse leaves it
    if extra and args.command == "export" and args.output is None and len(extra) == 1 \
            and not extra[0].startswith("-"):
        args.output, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe is seen here, not at exit
    except BrokenPipeError:  # the reader went away (| head): quietly, like cat
        _silence_stdout()
        return 0
    except (OSError, KeyError, ValueError, TypeError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"loopwise {args.command}: error: {printable_lines(message)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
