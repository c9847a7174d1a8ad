"""The run's media thread: bins histograms and writes images off the training thread.

The caller (``Run.log_histogram`` / ``log_image``) only queues a copy; this thread waits for a
device copy to land (:class:`~loopwise.record.histogram.HostCopy`, polled, never a device
sync), bins it, encodes and writes an image as ``images/<sha256>.png`` (content-addressed,
atomic; an image logged twice is stored once) and hands the index rows to the store's writer.

Memory: the copies waiting for the thread are bounded (``MAX_QUEUED`` jobs, ``MAX_QUEUED_BYTES``
of host memory); past that the caller waits for the thread (nothing is dropped).

The image budget: at most ``max_images`` images and ``max_image_mib`` MiB of image files per
run (counted over resumes). The first image past it is dropped with one warning event,
``image_budget_reached``, that says how to raise the budget; later ones are dropped silently
and counted (``dropped_images``).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record.folder import IMAGES_DIR
from loopwise.record.histogram import Histogram, HostCopy, bin_values, check_array, pack_counts
from loopwise.record.png import check_pixels, encode_png, png_size
from loopwise.record.store import StoreWriter
from loopwise.utils.atomic import atomic_write_bytes
from loopwise.utils.validate import check_count, check_non_negative

MAX_QUEUED = 10_000  # jobs waiting; past this the caller waits (nothing is dropped)
MAX_QUEUED_BYTES = 2 << 30  # copies waiting: past 2 GiB the caller waits for the thread
_POLL = 0.0005


@dataclass(frozen=True)
class ImageBudget:
    """Per-run limits on images: count and MiB of image files."""

    max_images: int = 1000
    max_mib: float = 256.0

    def __post_init__(self) -> None:
        check_count(self.max_images, what="max_images")
        check_non_negative(self.max_mib, what="max_image_mib", hint="MiB")


def _nbytes(payload: Any) -> int:
    """Host memory a queued payload holds (an array's or a copy's ``nbytes``; bytes' length)."""
    if isinstance(payload, bytes):
        return len(payload)
    size = getattr(payload, "nbytes", 0)
    return size if type(size) is int else 0


def image_path(run_path: Path, digest: str) -> Path:
    """Where the image ``digest`` of a run lives (read back, checked against ``digest``, by
    :meth:`~loopwise.record.reader.RunReader.image_bytes`)."""
    return run_path / IMAGES_DIR / f"{digest}.png"


class MediaWorker:
    """One thread per run (started on the first histogram or image)."""

    def __init__(self, run_path: Path, store: StoreWriter, *, budget: ImageBudget,
                 used: tuple[int, int, set[str]],
                 report: Callable[[str, str, Mapping[str, Any]], None]) -> None:
        self._path = run_path
        self._store = store
        self._budget = budget
        self._count, self._bytes, self._digests = used
        self._report = report
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._room = threading.Condition()
        self._queued_bytes = 0  # host memory held by the copies waiting (guarded by _room)
        self._error: BaseException | None = None
        self.dropped_images = 0

    # -- calling thread ----------------------------------------------------------------------
    def histogram(self, name: str, step: int, wall_time: float, values: Any, bins: int) -> None:
        self._put(("histogram", name, step, wall_time, values, bins))

    def image(self, name: str, step: int, wall_time: float, image: Any) -> None:
        """``image``: PNG bytes (checked) or a checked pixel array (encoded here)."""
        self._put(("image", name, step, wall_time, image))

    def flush(self) -> None:
        """Wait until every queued job was handed to the store."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.join()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def _put(self, job: tuple[Any, ...]) -> None:
        self._raise()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="loopwise-media",
                                                daemon=True)
                self._thread.start()
        size = _nbytes(job[4])
        with self._room:  # bounded memory: a burst of huge copies waits for the thread
            while self._queued_bytes and self._queued_bytes + size > MAX_QUEUED_BYTES:
                self._room.wait(0.1)
            self._queued_bytes += size
        self._queue.put(job)

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the run's media thread failed: {self._error}") from self._error

    # -- media thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    if job[0] == "histogram":
                        self._histogram(*job[1:])
                    else:
                        self._image(*job[1:])
            except Exception as exc:  # kept and raised to the caller's next log or flush
                self._error = exc
            finally:
                if job is not None:
                    with self._room:
                        self._queued_bytes -= _nbytes(job[4])
                        self._room.notify_all()
                self._queue.task_done()

    def _histogram(self, name: str, step: int, wall_time: float, values: Any,
                   bins: int) -> None:
        if isinstance(values, HostCopy):
            while not values.ready():
                time.sleep(_POLL)
            values = check_array(values.result(), name=name)
        hist = values if isinstance(values, Histogram) else bin_values(values, bins)
        self._store.add_media("histograms", (
            name, step, wall_time, hist.lo, hist.hi, hist.bins, pack_counts(hist.counts),
            hist.total, hist.sum, hist.sum_sq, hist.nan, hist.neg_inf, hist.pos_inf))

    def _image(self, name: str, step: int, wall_time: float, image: Any) -> None:
        if isinstance(image, HostCopy):
            while not image.ready():
                time.sleep(_POLL)
            image = check_pixels(image.result(), what=f"image {name!r}")
        data = image if isinstance(image, bytes) else encode_png(image)
        width, height = png_size(data, what=f"image {name!r}")
        digest = hashlib.sha256(data).hexdigest()
        new = digest not in self._digests
        over = (self._count + 1 > self._budget.max_images
                or (new and (self._bytes + len(data)) / 2**20 > self._budget.max_mib))
        if over:
            self.dropped_images += 1
            if self.dropped_images == 1:
                self._report("image_budget_reached", (
                    f"image {name!r} at step {step} was not recorded: the run holds "
                    f"{self._count} images ({self._bytes / 2**20:.1f} MiB), its budget is "
                    f"{self._budget.max_images} images and {self._budget.max_mib:g} MiB; later "
                    "images are dropped too. Raise it with Run.create(max_images=..., "
                    "max_image_mib=...) or log images less often"),
                    {"name": name, "step": step, "images": self._count,
                     "mib": self._bytes / 2**20, "max_images": self._budget.max_images,
                     "max_image_mib": self._budget.max_mib})
            return
        if new:
            target = image_path(self._path, digest)
            target.parent.mkdir(exist_ok=True)
            if not target.is_file():
                atomic_write_bytes(target, data)
            self._digests.add(digest)
            self._bytes += len(data)
        self._count += 1
        self._store.add_media("images", (name, step, wall_time, digest, width, height,
                                         len(data)))
