"""Export a run's scalar series to CSV: one row per step, one column per key.

Written with loopwise's one CSV writer (:mod:`loopwise.utils.csvfile`): a key that a
spreadsheet would evaluate (``=...``) gets a leading ``'``, a key named ``step`` or
``wall_time`` is written as ``step_metric``/``wall_time_metric``; the file is written
atomically and only over a regular file (``loopwise export RUN /dev/full`` is refused).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from loopwise.record.series import Series
from loopwise.utils.atomic import check_target
from loopwise.utils.csvfile import CsvColumns, number_cell, write_csv

LEAD = ("step", "wall_time")


class ScalarSeries(Protocol):
    """What the export reads of a run (a :class:`~loopwise.record.reader.RunReader`)."""

    def keys(self) -> list[str]: ...

    def series(self, key: str) -> Series: ...


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
    keys = reader.keys()
    columns = CsvColumns(lead=LEAD)
    for key in keys:
        columns.add(key)
    rows: dict[int, dict[str, float]] = {}
    times: dict[int, float] = {}
    for key in keys:
        series = reader.series(key)
        for step, wall, value in zip(series.steps, series.times, series.values, strict=True):
            rows.setdefault(step, {})[key] = value
            if wall > times.get(step, float("-inf")):
                times[step] = wall
    write_csv(target, columns.header, (
        [step, number_cell(times[step]), *(number_cell(rows[step].get(k)) for k in keys)]
        for step in sorted(rows)))
    return target
