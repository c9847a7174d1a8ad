"""loopwise's one CSV writer: the header of a table with fixed columns around metric columns,
the rule that turns a metric name into a column name, late columns, and the file writes.

Used by the monitor's CSV (:mod:`loopwise.watch.csvlog`), ``loopwise export``
(:mod:`loopwise.record.export`) and a Workflow's ``history.csv``
(:mod:`loopwise.train.workflow.experiment`).

Column names (:meth:`CsvColumns.column_for`): a metric name is written through
:func:`loopwise.utils.text.csv_cell` (a name starting with ``= + - @``, tab or CR gets a
leading ``'``; control characters are escaped), and a name that equals one of the table's own
columns (``step``, ``timestamp``, ``RAM_pct``, ``VRAM_gb``, ``wall_time``, ``epoch``...) gets the
suffix ``_metric`` (``step`` -> ``step_metric``), so no column is ever duplicated. Two names that
would still meet (``=a`` and ``'=a``) get ``_2``, ``_3``... in the order they appear.

Cells: numbers are written with :func:`number_cell` (``repr`` of the float: exact, ``-0.5``
stays a number); text cells go through ``csv_cell`` (:func:`text_cell`). A large table of
numbers (``loopwise export``) is written a column at a time: :func:`number_cells` makes the
same text as ``number_cell`` for a whole numpy column, and :func:`write_csv_columns` writes the
rows in chunks (numbers never need quoting; the header goes through the ``csv`` module).

A column added late (a metric first logged after rows were written) is added the same way
everywhere: the whole file is written again atomically (:func:`write_csv`) with the new header,
the earlier rows padded with empty cells.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from loopwise.utils.atomic import atomic_write_chunks, atomic_write_text
from loopwise.utils.text import csv_cell

RENAME_SUFFIX = "_metric"


def number_cell(value: float | int | None) -> str:
    """A number as a CSV cell: ``repr`` of the float (round-trips exactly); None is empty."""
    return "" if value is None else repr(float(value))


def number_cells(values: Any, present: Any = None) -> list[str]:
    """:func:`number_cell` of each value of a column (a float64 numpy array), made a column at
    a time; an empty cell where ``present`` (a bool array) is False.

    The same text as ``repr``, ~4x faster a column (2,000,000 floats: 0.19 s of CPU against
    0.84 s): orjson writes the whole column with Ryu (the exact shortest digits, as ``repr``);
    the values whose
    text orjson writes otherwise go through ``repr``: not finite (orjson writes ``null``) and
    0 < |x| < 1e-4 (orjson writes ``0.00001`` and ``1e-7`` where ``repr`` writes ``1e-05`` and
    ``1e-07``). ``tests/utils/test_csvfile.py`` compares the two on random bit patterns."""
    import numpy as np
    import orjson

    floats = np.ascontiguousarray(values, dtype=np.float64)
    if not len(floats):
        return []
    cells = orjson.dumps(floats, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")
    magnitude = np.abs(floats)
    odd = ~np.isfinite(floats) | ((magnitude < 1e-4) & (magnitude > 0))
    if present is not None:
        shown = np.asarray(present, dtype=bool)
        odd &= shown
        where = np.flatnonzero(shown)
        if len(where) * 2 < len(floats):  # mostly empty: fill the few cells that are there
            full, cells = cells, [""] * len(floats)
            for i in where.tolist():
                cells[i] = full[i]
        else:  # mostly full: empty the holes
            for i in np.flatnonzero(~shown).tolist():
                cells[i] = ""
    for i in np.flatnonzero(odd).tolist():
        cells[i] = float.__repr__(float(floats[i]))
    return cells


def int_cells(values: Any) -> list[str]:
    """Each integer of a column (a numpy array) as a CSV cell, as ``csv`` writes an int."""
    import numpy as np
    import orjson

    ints = np.ascontiguousarray(values, dtype=np.int64)
    if not len(ints):
        return []
    return orjson.dumps(ints, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")


def rows_bytes(columns: Sequence[Sequence[str]]) -> bytes:
    """The CSV rows (UTF-8) of a chunk given as its columns' cells (from :func:`number_cells`
    / :func:`int_cells`, equal lengths): no row is made cell by cell. Numbers need no quoting;
    rows end as the ``csv`` module ends them (``\\r\\n``)."""
    if not columns or not len(columns[0]):
        return b""
    return ("\r\n".join(map(",".join, zip(*columns, strict=True))) + "\r\n").encode("utf-8")


def write_csv_columns(path: str | os.PathLike[str], header: Sequence[str],
                      chunks: Iterable[Sequence[Sequence[str]] | bytes]) -> None:
    """Write a CSV file of numbers atomically, a chunk of rows at a time: each chunk is the
    list of its columns' cells, or those rows already made by :func:`rows_bytes` (in another
    process). The same file as :func:`write_csv` of the rows."""

    def pieces() -> Iterable[bytes]:
        yield csv_text(header, ()).encode("utf-8")
        for chunk in chunks:
            yield chunk if isinstance(chunk, bytes) else rows_bytes(chunk)

    atomic_write_chunks(path, pieces())


def text_cell(text: object) -> str:
    """User text as a CSV cell no spreadsheet evaluates (:func:`csv_cell`)."""
    return csv_cell(text)


class CsvColumns:
    """The header ``[*lead, *metric columns, *tail]`` of a loopwise CSV. Metric columns are
    added in the order the metrics first appear; ``columns`` continues an existing header
    (its metric column names, as read from the file)."""

    def __init__(self, *, lead: Sequence[str], tail: Sequence[str] = (),
                 columns: Iterable[str] = ()) -> None:
        self.lead = tuple(lead)
        self.tail = tuple(tail)
        self.metric_columns: list[str] = []
        self._index: dict[str, int] = {}  # column name -> position among metric columns
        self._owner: dict[str, str] = {}  # column name -> the metric that claimed it here
        self._by_name: dict[str, int] = {}  # metric name -> position (cache)
        for column in columns:
            self._index[column] = len(self.metric_columns)
            self.metric_columns.append(column)

    @property
    def header(self) -> list[str]:
        return [*self.lead, *self.metric_columns, *self.tail]

    def __len__(self) -> int:
        return len(self.lead) + len(self.metric_columns) + len(self.tail)

    def column_for(self, name: str) -> str:
        """The column name of metric ``name`` under the module's rule (not added)."""
        column = csv_cell(name)
        reserved = set(self.lead) | set(self.tail)
        while column in reserved:
            column += RENAME_SUFFIX
        return column

    def add(self, name: str) -> tuple[int, bool]:
        """The position of metric ``name`` among the metric columns, adding its column when
        new; the flag says whether a column was added."""
        found = self._by_name.get(name)
        if found is not None:
            return found, False
        base = self.column_for(name)
        column, n = base, 1
        while self._owner.get(column, name) != name:  # taken by another name in this table
            n += 1
            column = f"{base}_{n}"
        self._owner[column] = name
        added = column not in self._index
        if added:
            self._index[column] = len(self.metric_columns)
            self.metric_columns.append(column)
        position = self._by_name[name] = self._index[column]
        return position, added


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The CSV text of ``header`` and ``rows`` (cells already formatted)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def append_rows(fh: TextIO, rows: Iterable[Sequence[object]], *,
                header: Sequence[str] | None = None) -> None:
    """Append ``rows`` (after ``header`` when given) to an open CSV file and flush it."""
    writer = csv.writer(fh)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    fh.flush()


def write_csv(path: str | os.PathLike[str], header: Sequence[str],
              rows: Iterable[Sequence[object]]) -> None:
    """Write a whole CSV file atomically (a target that is not a regular file is refused)."""
    atomic_write_text(path, csv_text(header, rows))


def read_csv(path: str | os.PathLike[str]) -> list[list[str]]:
    """Every row of a CSV file (the header first); an empty file gives ``[]``."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def pad(row: Sequence[object], width: int, *, at: int) -> list[object]:
    """``row`` widened to ``width`` cells by empty cells inserted at position ``at`` (where
    the metric columns added after the row was made belong)."""
    missing = width - len(row)
    if missing <= 0:
        return list(row)
    return [*row[:at], *[""] * missing, *row[at:]]
