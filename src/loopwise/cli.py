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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a user error is one line on stderr and exit code 2 (CLI arguments
    echoed in it pass through ``printable``)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (OSError, KeyError, ValueError, TypeError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"loopwise {args.command}: error: {printable_lines(message)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
