"""Checking the store's checksums on read (the sums are written by
:mod:`loopwise.record.store`; their layout is in :mod:`loopwise.record.storefile`).

A part of the store whose bytes changed since they were written (a flipped bit on the disk, a
file edited by hand) is a :class:`DamagedRecordError` naming the run, the file and the part
(``series 'loss'``, ``events``, ``system samples``); the other parts still read. A part written
before checksums existed (an old run) has none: it is read unverified, never called damaged.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopwise.record.errors import CorruptRecordError
from loopwise.record.storefile import chunk_sum, rows_sum

DAMAGED_HINT = ("its bytes changed after they were written (a disk error, or an edit); the "
                "run's other series still read; restore the file from a backup to get it back")
IMAGE_HINT = ("its bytes no longer match the SHA-256 it was stored under (a disk error, or an "
              "edit); the run's other images still read; restore the file from a backup to get "
              "it back")


class DamagedRecordError(CorruptRecordError):
    """One part of a run's record (``part``: a series, the events, the system samples, an
    image) fails its checksum. ``path`` is the store file (an image's PNG file for an image),
    ``run`` the run's folder name; ``rows``: the rowids ``(first, last)`` of the damaged batch
    of an events, system or media table."""

    def __init__(self, path: str | os.PathLike[str], part: str, *,
                 rows: tuple[int, int] | None = None, run: str | None = None,
                 hint: str = DAMAGED_HINT) -> None:
        self.part = part
        self.rows = rows
        self.run = Path(path).parent.name if run is None else run
        where = "" if rows is None else f" (rows {rows[0]}-{rows[1]})"
        super().__init__(path, f"run {self.run!r}: {part}{where} failed its checksum",
                         hint=hint)


def check_chunk(path: Path, key: str, steps: bytes, times: bytes, vals: bytes,
                expected: int | None) -> None:
    """Raise :class:`DamagedRecordError` when one column chunk of ``key`` does not match its
    checksum (None: written before checksums, unverified)."""
    if expected is not None and chunk_sum(key, steps, times, vals) != expected:
        raise DamagedRecordError(path, f"series {key!r}")


class ChunkCheck:
    """The checksum check of one series' chunks (``(steps, times, vals, sum)`` rows). A long
    series (over :data:`THREAD_BYTES`) is hashed on a thread of its own while the reader
    unpacks it (XXH3 releases the GIL), so the check adds little to the read; :meth:`wait`
    joins it and raises :class:`DamagedRecordError` on a mismatch."""

    THREAD_BYTES = 1 << 20

    def __init__(self, path: Path, key: str,
                 rows: Sequence[tuple[bytes, bytes, bytes, int | None]]) -> None:
        self._path, self._key, self._rows = path, key, rows
        self._error: DamagedRecordError | None = None
        self._thread: threading.Thread | None = None
        size = sum(len(r[0]) * 3 for r in rows if r[3] is not None)
        if size > self.THREAD_BYTES:
            self._thread = threading.Thread(target=self._run, name="loopwise-verify",
                                            daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            for s, t, v, expected in self._rows:
                check_chunk(self._path, self._key, s, t, v, expected)
        except DamagedRecordError as exc:
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error


def check_rows(path: Path, part: str, rows: Sequence[Sequence[Any]],
               sums: Sequence[tuple[int, int, int]]) -> None:
    """Check ``rows`` (``(rowid, *columns)``, in rowid order) against their batch sums
    ``(first, last, sum)``; rows that no batch covers were written before checksums. The
    first batch that fails is a :class:`DamagedRecordError` naming ``part`` and its rows."""
    if not sums:
        return
    ids = [int(r[0]) for r in rows]
    for first, last, expected in sums:
        lo = bisect_right(ids, first - 1)
        hi = bisect_right(ids, last)
        if hi - lo != last - first + 1 or rows_sum([r[1:] for r in rows[lo:hi]]) != expected:
            raise DamagedRecordError(path, part, rows=(first, last))


def check_image(path: Path, digest: str, *, part: str, run: str) -> bytes:
    """The bytes of the image file ``path`` (stored content-addressed as ``<digest>.png``),
    or a :class:`DamagedRecordError` naming ``part`` when their SHA-256 is not ``digest``
    (a file gone is :class:`FileNotFoundError`)."""
    import hashlib

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise DamagedRecordError(path, part, run=run, hint=IMAGE_HINT)
    return data
