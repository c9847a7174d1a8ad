"""The record's histograms, images and texts as read back: the rows of
:mod:`loopwise.record.storefile`'s media tables (queried by the one store reader,
:class:`~loopwise.record.reader.RunReader`, and the follower) as objects, and as what a
recorder is handed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record.histogram import Histogram, unpack_counts
from loopwise.record.media import image_path

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
    """One logged image: ``path`` is its PNG file in the run folder, ``digest`` the SHA-256
    its bytes were stored under (:meth:`~loopwise.record.reader.RunReader.image_bytes` reads
    them checked against it), ``name`` the name it was logged as."""

    step: int
    time: float
    path: Path
    digest: str
    width: int
    height: int
    bytes: int
    name: str = ""


@dataclass(frozen=True)
class TextEntry:
    step: int
    time: float
    text: str


def media_points(table: str, rows: list[tuple[Any, ...]], run_path: Path, name: str = ""
                 ) -> list[Any]:
    """Rows of a media table (``step`` first, then :data:`COLUMNS` after ``name, step``) as
    :class:`HistogramPoint`, :class:`ImageEntry` or :class:`TextEntry` objects (``name``: the
    name they were logged as)."""
    if table == "histograms":
        return [HistogramPoint(int(r[0]), float(r[1]), media_value(table, ("", *r), run_path))
                for r in rows]
    if table == "images":
        return [ImageEntry(int(s), float(t), image_path(run_path, str(d)), str(d), int(w),
                           int(h), int(n), name) for s, t, d, w, h, n in rows]
    return [TextEntry(int(s), float(t), str(x)) for s, t, x in rows]
