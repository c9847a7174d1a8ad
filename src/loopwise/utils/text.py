"""Neutralising names and messages for the places they are shown: a terminal and a CSV cell.

A metric name, a run name or a CLI argument is user text. Written raw, ``\\x1b]0;owned\\x07`` in a
name retitles the terminal and ``=HYPERLINK(...)`` in a CSV header becomes a spreadsheet formula.
Every writer and renderer of loopwise passes user text through one of these two functions:

* :func:`printable` for anything printed (bars, tables, error messages): control characters
  (C0, DEL, C1, and so every escape sequence) are shown as ``\\xNN`` / ``\\uNNNN`` escapes.
* :func:`csv_cell` for a CSV cell: a text starting with ``=``, ``+``, ``-``, ``@``, tab or CR is
  prefixed with ``'`` (OWASP's rule for CSV injection), and control characters escaped. Numbers
  are written by the CSV writers themselves, so ``-0.5`` stays a number.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}"


def printable(text: object) -> str:
    """``text`` as a string safe to print: control characters shown as ``\\xNN``."""
    s = text if isinstance(text, str) else str(text)
    return _CONTROL.sub(_escape, s) if _CONTROL.search(s) else s


def printable_lines(text: object) -> str:
    """``text`` as :func:`printable` makes it, its line breaks kept: for a multi-line error
    message (each line escaped on its own)."""
    s = text if isinstance(text, str) else str(text)
    return "\n".join(printable(line) for line in s.split("\n"))


def csv_cell(text: object) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates: a leading ``= + - @`` (or tab, CR)
    gets a ``'`` in front; control characters are escaped."""
    s = text if isinstance(text, str) else str(text)
    if s.startswith(_FORMULA_START):
        s = "'" + s
    return printable(s)
