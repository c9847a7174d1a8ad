"""What a run records beyond scalars: histograms, images and text (a component of the run's
writer, :class:`~loopwise.record.writer.RunWriter`; ``Run.log_histogram`` & co. delegate to
it). Layout in ``docs/record.md``, the thread in :mod:`loopwise.record.media`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.record.histogram import HostCopy, check_bins, host_values
from loopwise.record.media import ImageBudget, MediaWorker
from loopwise.record.png import check_pixels, png_size
from loopwise.record.reader import RunReader
from loopwise.record.store import StoreWriter
from loopwise.utils.validate import check_count, check_key

MAX_TEXT = 1 << 20  # characters in one text entry


class RunMedia:
    """``log_histogram``, ``log_image`` and ``log_text`` of one run: ``step()`` is the run's
    global step, ``closed()`` whether it ended, ``report(kind, message, data)`` records a
    warning event; the media thread starts with the first histogram or image."""

    def __init__(self, path: Path, store: StoreWriter, *, budget: ImageBudget,
                 clock: Callable[[], float], step: Callable[[], int],
                 closed: Callable[[], RuntimeError | None],
                 report: Callable[[str, str, Mapping[str, Any]], None]) -> None:
        self.path = path
        self._store = store
        self._image_budget = budget
        self._clock = clock
        self._step = step
        self._closed = closed
        self._report = report
        self._media: MediaWorker | None = None

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        """Record the distribution of ``values`` (a tensor, a NumPy array, a sequence of
        numbers) at ``step`` (default: the global step) in ``bins`` equal bins. The caller only
        queues a copy; binning runs on the run's media thread. A tensor on a device is taken
        as a :func:`loopwise.watch.host_copy` (TrainingMonitor and TrainingSession do that)."""
        check_key(name, what="histogram name")
        at = self._media_step(step)
        check_bins(bins)
        source = host_values(values, name=name)
        self._media_worker().histogram(name, at, self._clock(), source, bins)

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        """Record an image at ``step``: a path to a PNG file, PNG bytes, an HxWx{1,3,4} uint8
        array (or CPU tensor) or a matplotlib figure. Stored once per content under
        ``images/`` in the run folder, within the run's image budget."""
        check_key(name, what="image name")
        at = self._media_step(step)
        what = f"image {name!r}"
        payload: Any
        if isinstance(image, (str, os.PathLike)):
            file = Path(image)
            if not file.is_file():
                raise FileNotFoundError(f"{what}: no file at {file}; give the path of a PNG")
            payload = file.read_bytes()
            png_size(payload, what=f"{what} ({file})")
        elif isinstance(image, (bytes, bytearray, memoryview)):
            payload = bytes(image)
            png_size(payload, what=what)
        elif isinstance(image, HostCopy):  # a device tensor on its way (checked by watch/)
            payload = image
        elif callable(getattr(image, "savefig", None)):  # a matplotlib figure
            buf = io.BytesIO()
            image.savefig(buf, format="png")
            payload = buf.getvalue()
        else:
            device = getattr(getattr(image, "device", None), "type", None)
            if device is not None and device != "cpu":
                raise TypeError(f"{what} is a tensor on {image.device}; log it through "
                                "TrainingMonitor/TrainingSession.log_image, or pass "
                                "tensor.cpu()")
            if image is None or isinstance(image, (int, float, dict, list, tuple)):
                raise TypeError(f"{what} must be a PNG path, PNG bytes, an HxWx{{1,3,4}} uint8 "
                                f"array or tensor, or a matplotlib figure; got "
                                f"{type(image).__name__}")
            detach = getattr(image, "detach", None)
            pixels = detach().numpy() if callable(detach) else image  # a CPU tensor
            payload = check_pixels(np.array(pixels, copy=True), what=what)
        self._media_worker().image(name, at, self._clock(), payload)

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        """Record a text entry (e.g. a sample prediction, a table) at ``step``."""
        check_key(name, what="text name")
        at = self._media_step(step)
        if not isinstance(text, str):
            raise TypeError(f"text {name!r} must be a str, got {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise ValueError(f"text {name!r} has {len(text):,} characters; at most "
                             f"{MAX_TEXT:,} fit in one entry: log a summary, or a file")
        self._store.add_media("texts", (name, at, self._clock(), text))

    @property
    def dropped_images(self) -> int:
        """Images not recorded because the run's image budget was spent."""
        return 0 if self._media is None else self._media.dropped_images

    def _media_step(self, step: int | None) -> int:
        error = self._closed()
        if error is not None:
            raise error
        if step is None:
            return self._step()
        return check_count(step, what="step", hint="the global step; None: the run's own")

    def _media_worker(self) -> MediaWorker:
        if self._media is None:
            used = RunReader(self.path).images_used()  # a resumed run goes on from there
            self._media = MediaWorker(self.path, self._store, budget=self._image_budget,
                                      used=used, report=self._report)
        return self._media

    def flush(self) -> None:
        """Wait until the media thread handed everything queued to the store."""
        if self._media is not None:
            self._media.flush()

    def close(self) -> None:
        """Stop the media thread after its last job."""
        if self._media is not None:
            self._media.close()
