"""Reading the record's histograms, images and texts (the rows of
:mod:`loopwise.record.storefile`'s media tables) for :class:`~loopwise.record.reader.RunReader`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record.histogram import Histogram, unpack_counts
from loopwise.record.media import image_path
from loopwise.record.store import STORE_FILE, connect

Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
KINDS = {"histograms": "histogram", "images": "image", "texts": "text"}
COLUMNS = {"histograms": "name, step, time, lo, hi, bins, counts, total, sum, sum_sq, nan,"
                         " neg_inf, pos_inf",
           "images": "name, step, time, digest, width, height, bytes",
           "texts": "name, step, time, text"}
"""The columns of a media row as the store's writer inserts them (``storefile.MEDIA_SQL``)."""


def media_value(table: str, row: tuple[Any, ...], run_path: Path) -> Any:
    """What a media row (:data:`COLUMNS`) hands a recorder: a :class:`Histogram`, the path
    of the image's PNG file, or the text."""
    if table == "histograms":
        lo, hi, bins, blob, total, total_sum, sum_sq, nan, neg, pos = row[3:]
        return Histogram(float(lo), float(hi), unpack_counts(blob, int(bins)), int(total),
                         float(total_sum), float(sum_sq), int(nan), int(neg), int(pos))
    if table == "images":
        return image_path(run_path, str(row[3]))
    return str(row[3])


def hand_over(recorder: Any, table: str, row: tuple[Any, ...], run_path: Path,
              **extra: Any) -> None:
    """Give one media row to ``recorder``'s ``log_histogram`` / ``log_image`` / ``log_text``
    (``extra``: keywords such as an exporter's ``wall_time``)."""
    method = getattr(recorder, f"log_{KINDS[table]}")
    method(row[0], media_value(table, row, run_path), step=int(row[1]), **extra)


@dataclass(frozen=True)
class HistogramPoint:
    step: int
    time: float
    histogram: Histogram


@dataclass(frozen=True)
class ImageEntry:
    """One logged image: ``path`` is its PNG file in the run folder."""

    step: int
    time: float
    path: Path
    digest: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class TextEntry:
    step: int
    time: float
    text: str


def media_names(query: Query, table: str) -> list[str]:
    """The names of one media table, in the order they were first logged."""
    rows = query(f"SELECT name, MIN(id) AS first FROM {table} GROUP BY name ORDER BY first", ())
    return [str(r[0]) for r in rows]


def _rows(query: Query, table: str, columns: str, name: object, run: str) -> list[Any]:
    if not isinstance(name, str):
        raise TypeError(f"{KINDS[table]} name must be a string, got {type(name).__name__}")
    rows = query(f"SELECT {columns} FROM {table} WHERE name = ? ORDER BY step, id", (name,))
    if not rows:
        known = ", ".join(media_names(query, table)) or "none"
        raise KeyError(f"run {run!r} has no {KINDS[table]} {name!r}; its {table}: {known}")
    return rows


def read_histograms(query: Query, name: object, run: str) -> list[HistogramPoint]:
    rows = _rows(query, "histograms", "step, time, lo, hi, bins, counts, total, sum, sum_sq,"
                 " nan, neg_inf, pos_inf", name, run)
    return [HistogramPoint(int(s), float(t), Histogram(
        float(lo), float(hi), unpack_counts(blob, int(b)), int(n), float(sm), float(sq),
        int(nan), int(neg), int(pos))) for s, t, lo, hi, b, blob, n, sm, sq, nan, neg, pos in rows]


def read_images(query: Query, name: object, run_path: Path) -> list[ImageEntry]:
    rows = _rows(query, "images", "step, time, digest, width, height, bytes", name,
                 run_path.name)
    return [ImageEntry(int(s), float(t), image_path(run_path, str(d)), str(d), int(w), int(h),
                       int(n)) for s, t, d, w, h, n in rows]


def read_texts(query: Query, name: object, run: str) -> list[TextEntry]:
    rows = _rows(query, "texts", "step, time, text", name, run)
    return [TextEntry(int(s), float(t), str(x)) for s, t, x in rows]


def images_used(run_path: Path) -> tuple[int, int, set[str]]:
    """How many images the run's record holds, the bytes of their files and their digests
    (the budget a resumed run goes on from)."""
    file = run_path / STORE_FILE
    if not file.is_file():
        return 0, 0, set()
    conn = connect(file, readonly=True)
    try:
        count = int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        sizes = dict(conn.execute("SELECT digest, MAX(bytes) FROM images GROUP BY digest"))
    except sqlite3.OperationalError:  # a store from before the media tables
        return 0, 0, set()
    finally:
        conn.close()
    return count, sum(int(v) for v in sizes.values()), set(sizes)
