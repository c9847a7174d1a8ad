"""The run table as text (fitted to the terminal, coloured on one), CSV and JSON: what
``loopwise runs`` prints. Pure functions of :class:`~loopwise.view.runs_table.RunRow` lists.

Default columns, the most telling first (a narrow terminal leaves out the last): name,
status; the config keys whose values differ between the runs (a key that is the same
everywhere says nothing about which run won); for each metric, validation first, its best
value (when its name states a direction) and its final one; then steps, duration, start. The best
value of each ``best.`` column is shown in bold green on a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any, TextIO

from loopwise.record.stats import _num, metric_mode
from loopwise.utils.table import render_table
from loopwise.utils.text import csv_cell, printable
from loopwise.utils.validate import check_int
from loopwise.view.runs_table import RunRow, metric_order, row_keys
from loopwise.view.where import MISSING

FORMATS = ("table", "csv", "json")
_STATUS_COLOUR = {"finished": "32", "running": "36", "failed": "31", "crashed": "31",
                  "corrupt": "31", "interrupted": "33"}
_BEST = "1;32"


def terminal(stream: TextIO, *, width: int | None = None,
             colour: str = "auto") -> tuple[int | None, bool]:
    """The width to fit and whether to colour, for output to ``stream``: a terminal's width
    and colours (unless ``NO_COLOR`` is set); no limit and no colour when piped. ``width`` and
    ``colour`` (``"always"`` / ``"never"``) override."""
    if width is not None:  # (a command-line option: the message does not offer None)
        width = check_int(width, what="--width", minimum=20, hint="terminal columns")
    if colour not in ("auto", "always", "never"):
        raise ValueError(f"--color takes auto, always or never; got {colour!r}")
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if width is None and tty:
        width = shutil.get_terminal_size().columns
    on = colour == "always" or (colour == "auto" and tty and not os.environ.get("NO_COLOR"))
    return width, on


def default_columns(rows: Sequence[RunRow]) -> list[str]:
    """name, status, the config keys that differ, best and final of each metric (validation
    first), steps, duration, start."""
    config = list(dict.fromkeys(k for r in rows for k in r.config))
    differ = [k for k in config
              if len({json.dumps(r.config.get(k, "\0"), sort_keys=True) for r in rows}) > 1]
    metrics = metric_order(k for r in rows for k in r.final)
    cols = ["name", "status", *differ]
    for m in metrics:
        if metric_mode(m) is not None:
            cols.append(f"best.{m}")
        cols.append(f"final.{m}")
    return [*cols, "steps", "duration", "start"]


def check_columns(columns: Sequence[str], rows: Sequence[RunRow]) -> list[str]:
    """``columns`` with ``name`` first; an unknown one is a ValueError listing the known."""
    known = row_keys(rows)
    for c in columns:
        if c not in known:
            raise ValueError(f"unknown column {c!r}; known: {', '.join(known)}")
    return ["name", *(c for c in columns if c != "name")]


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def cell_text(key: str, value: Any) -> str:
    """One value as the table shows it."""
    if value is MISSING or value is None:
        return "-"
    if key == "start" or key == "end":
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
    if key == "duration":
        return duration_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, allow_nan=True)


def best_rows(rows: Sequence[RunRow], columns: Sequence[str]) -> dict[int, set[int]]:
    """For each ``best.``/``final.`` column of a metric with a direction: the indices of the
    rows holding its best value."""
    out: dict[int, set[int]] = {}
    for c, key in enumerate(columns):
        kind, _, metric = key.partition(".")
        mode = metric_mode(metric) if kind in ("best", "final") else None
        if mode is None:
            continue
        values = [(i, r.get(key)) for i, r in enumerate(rows)]
        numbers = [(i, v) for i, v in values if isinstance(v, (int, float))
                   and not isinstance(v, bool) and math.isfinite(v)]
        if not numbers:
            continue
        top = (min if mode == "min" else max)(v for _, v in numbers)
        out[c] = {i for i, v in numbers if v == top}
    return out


def render_runs(rows: Sequence[RunRow], columns: Sequence[str], *, width: int | None = None,
                colour: bool = False) -> str:
    """The rows as a text table of ``columns``, fitted to ``width`` terminal columns (long
    names cut in the middle; columns that do not fit left out); ``colour``: ANSI colours for
    the status and each metric's best value."""
    named = [r for r in rows if r.problem is not None]
    rows = [r for r in rows if r.status != "corrupt"]
    cells = [[cell_text(c, r.get(c)) for c in columns] for r in rows]
    numeric = ["r" if c in ("duration", "steps") or (c != "start" and any(
        isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows))
        else "l" for c in columns]
    bests = best_rows(rows, columns) if colour else {}
    status_col = columns.index("status") if "status" in columns else -1

    def style(row: int, col: int, text: str) -> str:
        if not colour:
            return text
        if row < 0:
            return f"\x1b[1m{text}\x1b[0m"
        code = (_STATUS_COLOUR.get(rows[row].status) if col == status_col
                else _BEST if row in bests.get(col, ()) else None)
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    text = render_table(cells, header=list(columns), align="".join(numeric), rule="columns",
                        width=width, style=style)
    # under the table: a damaged file, with the run's name and status (corrupt: the run
    # cannot be read, so it has no row) and what to do; a series that fails its checksum:
    # left out of its run's row, named here
    return "\n".join([text, *(printable(f"{r.name}  {r.status}  {r.problem}") for r in named),
                      *(printable(f"{r.name}  damaged  {d}") for r in rows for d in r.damaged)])


def runs_csv(rows: Sequence[RunRow], columns: Sequence[str]) -> str:
    """The rows as CSV: numbers as numbers, text cells safe from spreadsheet formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    for r in rows:
        line: list[Any] = []
        for c in columns:
            v = r.get(c)
            if v is MISSING or v is None:
                line.append("")
            elif isinstance(v, bool):
                line.append("true" if v else "false")
            elif isinstance(v, (int, float)):
                line.append(repr(v) if isinstance(v, float) else str(v))
            else:
                line.append(csv_cell(v if isinstance(v, str) else json.dumps(v)))
        writer.writerow(line)
    return out.getvalue()


def runs_json(rows: Sequence[RunRow], columns: Sequence[str] | None = None) -> str:
    """The rows as a JSON array (all of each row, or only ``columns``); NaN as null."""
    def clean(v: Any) -> Any:
        if v is MISSING:
            return None
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    if columns is None:
        body: list[Any] = [{**r.as_dict(), "path": str(r.path)} for r in rows]
    else:
        body = [{c: clean(r.get(c)) for c in columns} for r in rows]
    return json.dumps(body, indent=1, allow_nan=False, default=str)
