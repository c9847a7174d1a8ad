"""Export a run's scalar series to CSV: one row per step, one column per key."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from loopwise.record.atomic import atomic_write_text

if TYPE_CHECKING:
    from loopwise.record.reader import RunReader


def run_to_csv(reader: RunReader, path: str | os.PathLike[str]) -> Path:
    """Write ``step, wall_time, <key>...`` rows; a key not logged at a step leaves its cell empty.

    ``wall_time`` is the latest time any key was logged at that step. Written atomically.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as run.csv")
    keys = reader.keys()
    rows: dict[int, dict[str, float]] = {}
    times: dict[int, float] = {}
    for key in keys:
        series = reader.series(key)
        for step, wall, value in zip(series.steps, series.times, series.values, strict=True):
            rows.setdefault(step, {})[key] = value
            if wall > times.get(step, float("-inf")):
                times[step] = wall
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["step", "wall_time", *keys])
    for step in sorted(rows):
        values = rows[step]
        writer.writerow([step, repr(times[step]), *(repr(values[k]) if k in values else ""
                                                    for k in keys)])
    atomic_write_text(target, buf.getvalue())
    return target
