"""The monitor's CSV log: ``timestamp, step, <metric running averages>..., RAM_pct, VRAM_gb``.

``RAM_pct`` is the system RAM in use (percent); ``VRAM_gb`` (the column name the CSV has always
had) is the memory torch has allocated on the CUDA devices, in GiB (2**30 bytes).

Rows are buffered and written at most every ``flush_interval`` seconds (default 1 s) and on
close. Column names, the late-column rewrite and the cell format are those of loopwise's one
CSV writer (:mod:`loopwise.utils.csvfile`): a metric named like one of the CSV's own columns
(``step``, ``timestamp``, ``RAM_pct``, ``VRAM_gb``) is written as ``<name>_metric``; a name that
a spreadsheet would evaluate (``=...``) gets a leading ``'``. A metric first logged later gets
its own column: the file is rewritten atomically with the new header and the earlier rows
padded with empty cells, so nothing is lost. An existing file with a loopwise header is
continued (appended to), so several monitors (one per epoch) can share one ``log_file``.
A ``log_file`` that exists and is not a regular file (a symlink, a FIFO...) is refused.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import TextIO

from loopwise.utils.atomic import check_target
from loopwise.utils.csvfile import (
    CsvColumns,
    append_rows,
    number_cell,
    pad,
    read_csv,
    write_csv,
)
from loopwise.utils.isotime import iso_stamps

LEAD = ["timestamp", "step"]
TAIL = ["RAM_pct", "VRAM_gb"]

__all__ = ["LEAD", "TAIL", "CsvLog", "iso_stamps"]


class CsvLog:
    """Append-only CSV with late columns; crash-safe rewrites, timed flushes."""

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"log_file must be a file path, got {type(path).__name__}")
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"log_file {str(self.path)!r} is a folder; give a file name such as train.csv")
        check_target(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = self._read_header()
            self._fh: TextIO | None = self._open()
        except OSError as exc:
            raise PermissionError(
                f"cannot write log_file {str(self.path)!r}: {exc.strerror or exc}; "
                "choose a path in a folder you can write to"
            ) from exc
        self._columns = CsvColumns(lead=LEAD, tail=TAIL, columns=existing)
        self._header_written = bool(existing) or self.path.stat().st_size > 0
        self._rows: list[Sequence[object]] = []
        self._new_columns = False
        self._clock = clock
        self._flush_interval = flush_interval
        self._last_flush = clock()

    def _open(self) -> TextIO:
        return open(self.path, "a", newline="", encoding="utf-8")

    def _read_header(self) -> list[str]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return []
        with open(self.path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if header[:2] != LEAD or header[-2:] != TAIL:
            raise ValueError(
                f"log_file {str(self.path)!r} exists and is not a loopwise CSV "
                f"(header {header[:4]}...); choose another path or delete it"
            )
        return header[2:-2]

    @property
    def metrics(self) -> list[str]:
        """The metric columns, in order (column names: see the module's naming rule)."""
        return list(self._columns.metric_columns)

    @property
    def columns(self) -> list[str]:
        return self._columns.header

    def _positions(self, keys: Sequence[str] | Mapping[str, object]) -> list[int]:
        out = []
        for key in keys:
            position, added = self._columns.add(key)
            self._new_columns |= added
            out.append(position)
        return out

    def add(self, wall_time: float, step: int, averages: dict[str, float],
            ram_pct: float, vram_gb: float) -> None:
        """Buffer one row of running averages."""
        cells = [""] * len(self._columns.metric_columns)
        for position, value in zip(self._positions(averages), averages.values(), strict=True):
            if position >= len(cells):
                cells.extend([""] * (position + 1 - len(cells)))
            cells[position] = number_cell(value)
        self._rows.append([iso_stamps((wall_time,))[0], str(step), *cells,
                           number_cell(ram_pct), number_cell(vram_gb)])

    def add_rows(self, wall_times: Sequence[float], steps: Sequence[int],
                 averages: Mapping[str, Sequence[float] | float], ram_pct: float,
                 vram_gb: float) -> None:
        """Buffer one row per step: ``averages[key]`` is a column (one running average per
        row) or one number for every row (a metric not logged in these steps)."""
        positions = self._positions(averages)
        n = len(steps)
        empty = [""] * n  # a list, not one shared iterator: zip iterates each column afresh
        columns: list[object] = [empty] * len(self._columns.metric_columns)
        for position, column in zip(positions, averages.values(), strict=True):
            columns[position] = (column if isinstance(column, Sequence)
                                 and not isinstance(column, str) else repeat(column, n))
        self._rows.extend(zip(iso_stamps(wall_times), steps, *columns,  # type: ignore[call-overload]
                              repeat(number_cell(ram_pct), n), repeat(number_cell(vram_gb), n),
                              strict=True))

    def maybe_flush(self) -> None:
        if self._clock() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows (rewriting the file when columns were added)."""
        self._last_flush = self._clock()
        if self._new_columns and self._header_written:
            self._rewrite()
        elif self._rows or not self._header_written:
            if self._fh is None:  # closed at the end of a pass: a later pass appends again
                self._fh = self._open()
            append_rows(self._fh, self._pad(self._rows),
                        header=None if self._header_written else self.columns)
            self._header_written = True
            self._rows = []
        self._new_columns = False

    def _pad(self, rows: Sequence[Sequence[object]]) -> list[Sequence[object]]:
        width = len(self._columns)
        return [pad(row, width, at=len(row) - len(TAIL)) for row in rows]

    def _rewrite(self) -> None:
        if self._fh is not None:
            self._fh.close()
        old = read_csv(self.path)
        old_header, old_rows = (old[0], old[1:]) if old else (self.columns, [])
        old_metrics = old_header[2:-2]
        metrics = self._columns.metric_columns
        rows: list[Sequence[object]] = []
        for row in old_rows:
            values = dict(zip(old_metrics, row[2:-2], strict=False))
            rows.append([*row[:2], *(values.get(k, "") for k in metrics), *row[-2:]])
        rows.extend(self._pad(self._rows))
        self._rows = []
        write_csv(self.path, self.columns, rows)
        self._fh = None

    def close(self) -> None:
        """Write what is buffered, fsync and close the file (a later row opens it again)."""
        self.flush()
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
