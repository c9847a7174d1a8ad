"""Export a run's scalar series to CSV: one row per step, one column per key.

Written with loopwise's one CSV writer (:mod:`loopwise.utils.csvfile`): a key that a
spreadsheet would evaluate (``=...``) gets a leading ``'``, a key named ``step`` or
``wall_time`` is written as ``step_metric``/``wall_time_metric``; the file is written
atomically and only over a regular file (``loopwise export RUN /dev/full`` is refused).

The table (:func:`wide_columns`) is built with numpy, a column per key, and the CSV written a
chunk of rows at a time: a 2,000,000-step run of 5 metrics in seconds (issue 25).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loopwise.record.series import Series, sorted_union
from loopwise.utils.atomic import check_target
from loopwise.utils.csvfile import (
    CsvColumns,
    int_cells,
    number_cells,
    rows_bytes,
    write_csv_columns,
)

LEAD = ("step", "wall_time")
_ROWS = 100_000  # rows formatted at once


class ScalarSeries(Protocol):
    """What the export reads of a run (a :class:`~loopwise.record.reader.RunReader`)."""

    def keys(self) -> list[str]: ...

    def series(self, key: str) -> Series: ...


@dataclass
class WideColumns:
    """A run's scalars as one row per step: ``steps`` (every step any key was logged at, in
    order, int64), ``wall_times`` (the latest time any key was logged at that step), and per
    key its ``values`` (float64; the last value logged at a step) and ``present`` (bool: was
    the key logged at that step)."""

    keys: list[str]
    steps: Any
    wall_times: Any
    values: dict[str, Any]
    present: dict[str, Any]


def wide_columns(reader: ScalarSeries) -> WideColumns:
    """The run's scalar series as one row per step (:class:`WideColumns`), with numpy."""
    import numpy as np

    keys = reader.keys()
    read = {}
    for key in keys:
        series = reader.series(key)
        read[key] = (np.asarray(series.steps, dtype=np.int64),
                     np.asarray(series.times, dtype=np.float64),
                     np.asarray(series.values, dtype=np.float64))
    steps = sorted_union([s for s, _, _ in read.values()])
    walls = np.full(len(steps), -np.inf)
    values: dict[str, Any] = {}
    present: dict[str, Any] = {}
    for key, (s, t, v) in read.items():
        at = np.searchsorted(steps, s)
        column, here = np.zeros(len(steps)), np.zeros(len(steps), dtype=bool)
        if len(s) < 2 or bool(np.all(s[1:] > s[:-1])):  # one point per step (the usual case)
            column[at] = v
            walls[at] = np.fmax(walls[at], t)  # a NaN time never wins, as before
        else:  # several points at a step: the last one logged is its value
            last = len(s) - 1 - np.unique(s[::-1], return_index=True)[1]
            column[at[last]] = v[last]
            np.fmax.at(walls, at, t)
        here[at] = True
        values[key], present[key] = column, here
    return WideColumns(keys, steps, walls, values, present)


def run_to_csv(reader: ScalarSeries, path: str | os.PathLike[str]) -> Path:
    """Write ``step, wall_time, <key>...`` rows; a key not logged at a step leaves its cell empty.

    ``wall_time`` is the latest time any key was logged at that step. Written atomically.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as run.csv")
    check_target(target)  # before reading the run: a symlink or a device node is refused
    table = wide_columns(reader)
    columns = CsvColumns(lead=LEAD)
    for key in table.keys:
        columns.add(key)
    chunks = ((table.steps[a:a + _ROWS], table.wall_times[a:a + _ROWS],
               [(table.values[k][a:a + _ROWS], table.present[k][a:a + _ROWS])
                for k in table.keys]) for a in range(0, len(table.steps), _ROWS))
    write_csv_columns(target, columns.header, map(_rows, chunks))
    return target


def _rows(chunk: tuple[Any, Any, list[tuple[Any, Any]]]) -> bytes:
    """One chunk's CSV rows: ``repr`` of each float (the exact shortest text, ~0.4 us a
    value) is most of an export's time."""
    steps, walls, keyed = chunk
    return rows_bytes([int_cells(steps), number_cells(walls),
                       *(number_cells(values, present) for values, present in keyed)])
