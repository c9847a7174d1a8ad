"""``loopwise export RUN --format csv|jsonl|parquet``: a run's scalar series as one row per step
and one column per key, in three formats.

* ``csv``: :meth:`loopwise.record.RunReader.to_csv` (names through ``csv_cell``).
* ``jsonl``: one JSON object per step, ``{"step": 1, "wall_time": ..., "loss": 0.5}``; a key
  not logged at that step is absent; NaN and infinities are written as ``null``. The record's
  histograms, images and texts follow as objects of their own, in step order after that
  step's scalars, their content under one key whose value is an object (a scalar never is):
  ``{"step": 5, "wall_time": ..., "histogram": {"name": "weights/w", "lo": ..., "hi": ...,
  "edges": [...], "counts": [...], "total": ..., "sum": ..., "sum_sq": ..., "nan": 0,
  "neg_inf": 0, "pos_inf": 0}}``, ``{..., "image": {"name": ..., "path":
  "images/<sha256>.png", "width": ..., "height": ...}}`` (the path in the run folder),
  ``{..., "text": {"name": ..., "text": ...}}``.
* ``parquet``: the same table with one nullable float64 column per key (extra
  ``loopwise[parquet]``, which installs pyarrow).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from loopwise.record.export import wide_columns
from loopwise.record.reader import RunReader
from loopwise.utils.atomic import atomic_write_bytes, atomic_write_text
from loopwise.utils.jsonsafe import json_safe

FORMATS = ("csv", "jsonl", "parquet")


def wide_table(reader: RunReader) -> tuple[list[str], list[int], list[float],
                                           dict[str, list[float | None]]]:
    """``(keys, steps, wall_times, columns)``: every step any key was logged at, in order; the
    wall time is the latest of that step; a key not logged at a step holds ``None``
    (:func:`loopwise.record.export.wide_columns` as lists)."""
    table = wide_columns(reader)
    columns: dict[str, list[float | None]] = {}
    for key in table.keys:
        values: list[float | None] = table.values[key].tolist()
        for i in (~table.present[key]).nonzero()[0].tolist():
            values[i] = None
        columns[key] = values
    return table.keys, table.steps.tolist(), table.wall_times.tolist(), columns


def media_rows(reader: RunReader) -> list[tuple[int, float, str, dict[str, Any]]]:
    """``(step, wall_time, kind, content)`` of every histogram, image and text of the run."""
    out: list[tuple[int, float, str, dict[str, Any]]] = []
    for name in reader.histogram_names():
        for p in reader.histograms(name):
            body = {"name": name, **json_safe(p.histogram.to_json())}
            body["edges"] = json_safe(p.histogram.edges())
            out.append((p.step, p.time, "histogram", body))
    for name in reader.image_names():
        out.extend((e.step, e.time, "image", {
            "name": name, "path": e.path.relative_to(reader.path).as_posix(), "width": e.width,
            "height": e.height}) for e in reader.images(name))
    for name in reader.text_names():
        out.extend((t.step, t.time, "text", {"name": name, "text": t.text})
                   for t in reader.texts(name))
    return out


def _jsonl(reader: RunReader) -> str:
    keys, steps, walls, columns = wide_table(reader)
    lines: list[tuple[int, int, str]] = []
    for i, step in enumerate(steps):
        row: dict[str, Any] = {"step": step, "wall_time": walls[i]}
        for key in keys:
            v = columns[key][i]
            if v is not None:
                row[key] = v if math.isfinite(v) else None
        lines.append((step, 0, json.dumps(row, allow_nan=False)))
    for step, wall, kind, body in media_rows(reader):
        lines.append((step, 1, json.dumps({"step": step, "wall_time": wall, kind: body},
                                          allow_nan=False)))
    lines.sort(key=lambda line: (line[0], line[1]))  # stable: media in their logged order
    return "".join(line[2] + "\n" for line in lines)


def _parquet(reader: RunReader) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("--format parquet needs pyarrow: pip install 'loopwise[parquet]'"
                          ) from exc
    wide = wide_columns(reader)  # numpy columns, handed to Arrow whole
    reserved = {"step", "wall_time"}
    names = ["step", "wall_time"] + [f"metric:{k}" if k in reserved else k for k in wide.keys]
    table = pa.table([pa.array(wide.steps, pa.int64()), pa.array(wide.wall_times, pa.float64()),
                      *(pa.array(wide.values[k], pa.float64(), mask=~wide.present[k])
                        for k in wide.keys)], names=names)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def export_run(reader: RunReader, path: str | os.PathLike[str], *, fmt: str = "csv") -> Path:
    """Write the run read by ``reader`` to ``path`` in ``fmt`` (atomically); return the path."""
    if not isinstance(reader, RunReader):
        raise TypeError(f"reader must be a RunReader, got {type(reader).__name__}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as run.{fmt}")
    if fmt == "csv":
        return reader.to_csv(target)
    if fmt == "jsonl":
        atomic_write_text(target, _jsonl(reader))
    else:
        atomic_write_bytes(target, _parquet(reader))
    return target
