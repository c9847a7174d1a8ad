"""The exporters' base: the recorder Protocol, attaching to a run, and where delivery runs.

``delivery=`` chooses where the backend's work runs:

* ``"process"`` (the TensorBoard and MLflow exporters' default): attached to a run, the exporter
  is rebuilt in a process of its own (:mod:`loopwise.export.process`), which follows the run's
  record and delivers with the machinery of :mod:`loopwise.export.delivery`; none of the
  backend's Python work competes with the training thread for the GIL. The training process
  only counts the points its store commits and relays the exporter's events onto the run.
* ``"thread"`` (the Prometheus exporter's only choice: its endpoint lives in the training
  process): ``Run.add_exporter`` hands the exporter the config, then every committed batch from
  the store's writer thread, then the close; it delivers from a thread of its own.

An exporter not attached to a run (used on its own, or by a backfill) delivers from a thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwise.export.delivery import Delivery
from loopwise.export.link import (
    DeliveryStats,
    EventSink,
    RunLink,
    check_delivery,
    check_seconds,
)
from loopwise.export.payload import EventRow, Sample
from loopwise.export.process import DeliveryProcess
from loopwise.record.histogram import Histogram, bin_values, check_bins, host_values
from loopwise.record.png import png_size
from loopwise.record.recorder import ColumnData
from loopwise.utils.validate import check_count, check_key

if TYPE_CHECKING:
    from loopwise.record.run import Run

__all__ = ["DeliveryStats", "EventSink", "Exporter", "RunLink", "check_seconds"]

class Exporter(Delivery):
    """Base of the TensorBoard, MLflow and Prometheus exporters (see the module docstring and
    :class:`~loopwise.export.delivery.Delivery` for the hooks a backend implements)."""

    deliveries: tuple[str, ...] = ("thread", "process")  # the first one is the default
    # environment defaults of the delivery process (a variable the user set wins): how a
    # backend's own hidden retries are turned off so that failures are seen and counted
    process_env: Mapping[str, str] = {}
    init_args: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    def __new__(cls, *args: Any, **kwargs: Any) -> Exporter:
        self = super().__new__(cls)
        self.init_args = (args, dict(kwargs))  # how a delivery process rebuilds it
        return self

    def __init__(self, *, delivery: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.delivery = check_delivery(self.deliveries[0] if delivery is None else delivery,
                                       self.deliveries, type(self).__name__)
        self._remote: DeliveryProcess | None = None

    # -- attaching -----------------------------------------------------------------------------
    def bind_run(self, run: Run) -> None:
        """Called by ``Run.add_exporter``: the exporter learns the run's folder, info and global
        step, and records its delivery events on it. With ``delivery="process"`` its delivery
        process starts here."""
        def record(kind: str, message: str, level: str, data: Mapping[str, Any]) -> None:
            run.log_event(kind, message, level=level, data=dict(data))

        self.link = RunLink(path=run.path, info=lambda: run.info,
                            global_step=lambda: run.global_step, record_event=record)
        if self.delivery == "process" and self._remote is None and self._thread is None:
            self._remote = DeliveryProcess(self, run.path, run.info)

    @property
    def pid(self) -> int | None:
        """The PID of the delivery process (``delivery="process"``, once attached), else None."""
        return None if self._remote is None else self._remote.pid

    # -- Recorder ------------------------------------------------------------------------------
    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        t = time.time() if wall_time is None else wall_time
        self._put("columns", {k: ([step], [t], [float(v)]) for k, v in values.items()},
                  len(values))

    def log_columns(self, columns: Mapping[str, ColumnData]) -> None:
        self._put("columns", columns, sum(len(c[0]) for c in columns.values()))

    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None:
        row = {f"epoch/{k}": float(v) for k, v in values.items()}
        row["epoch"] = float(epoch)
        self.log_scalars(row, step=self.link.global_step() if step is None else step)

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None, wall_time: float | None = None,
                  step: int | None = None) -> None:
        """An event at ``step``: default ``data["step"]`` (health findings carry it), else the
        run's global step now."""
        t = time.time() if wall_time is None else wall_time
        if step is None:
            at = None if data is None else data.get("step")
            step = at if type(at) is int else self.link.global_step()
        self._put("events", [EventRow(t, level, kind, message, data, step)], 1)

    def log_system(self, values: Mapping[str, float], *, wall_time: float | None = None) -> None:
        t = time.time() if wall_time is None else wall_time
        self._put("system", [Sample(t, values)], 1)

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64, wall_time: float | None = None) -> None:
        """A histogram at ``step``: a binned :class:`Histogram` (what a run hands over) or
        values, binned here."""
        if self._remote is not None:
            return  # its delivery process reads the histograms from the record
        hist = values if isinstance(values, Histogram) else bin_values(
            host_values(values, name=check_key(name, what="histogram name")), check_bins(bins))
        self.call("_send_histogram", name, hist, self._at(step),
                  time.time() if wall_time is None else wall_time)

    def log_image(self, name: str, image: Any, *, step: int | None = None,
                  wall_time: float | None = None) -> None:
        """An image at ``step``: the path of a PNG file (what a run hands over) or PNG bytes."""
        if self._remote is not None:
            return  # its delivery process reads the images from the record
        png = Path(image).read_bytes() if isinstance(image, (str, os.PathLike)) else image
        if not isinstance(png, bytes):
            raise TypeError(f"an exporter's log_image takes a PNG path or PNG bytes, got "
                            f"{type(image).__name__}; log other images on the run")
        png_size(png, what=f"image {name!r}")
        self.call("_send_image", name, png, self._at(step),
                  time.time() if wall_time is None else wall_time)

    def log_text(self, name: str, text: str, *, step: int | None = None,
                 wall_time: float | None = None) -> None:
        """A text entry at ``step``."""
        if self._remote is not None:
            return  # its delivery process reads the texts from the record
        if not isinstance(text, str):
            raise TypeError(f"text {name!r} must be a str, got {type(text).__name__}")
        self.call("_send_text", name, text, self._at(step),
                  time.time() if wall_time is None else wall_time)

    def _at(self, step: int | None) -> int:
        if step is None:
            return self.link.global_step()
        return check_count(step, what="step", hint="the global step; None: the run's own")

    def set_config(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        if self._remote is not None:
            self._remote.send(("config", dict(config)))
            return
        with self._cond:
            if self._closing is not None:
                return
            self._pending_config = dict(config)
            self._start()
            self._cond.notify()

    def call(self, method: str, *args: Any) -> None:
        """Queue ``self.<method>(*args)`` for the delivery thread (in the delivery process with
        ``delivery="process"``): how helpers such as ``log_histograms`` deliver."""
        if self._remote is not None:
            self._remote.count(1)
            self._remote.send(("call", method, args))
            return
        self._put("call", [partial(getattr(self, method), *args)], 1)

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Drain for at most ``close_timeout`` seconds, finish the backend run with ``status``
        and report what could not be delivered. Idempotent."""
        remote = self._remote
        if remote is None:
            self.close_delivery(status, error)
            return
        with self._cond:
            if self._closing is not None:
                return
            self._closing = (status, error)
        why = remote.close(status, error, self.link.info(), self.close_timeout)
        with self._cond:
            if why is not None:
                self.undelivered += remote.unaccounted(self.delivered, self.dropped,
                                                       self.undelivered)
                self.last_error = why
            self._closed = True
        self._report_undelivered()

    def absorb(self, state: Mapping[str, Any], last_error: str | None) -> None:
        """The delivery process's counts and state (``delivery="process"``)."""
        with self._cond:
            self.load_state_dict(state)
            self.last_error = last_error

    def stats(self) -> DeliveryStats:
        if self._remote is None:
            return super().stats()
        with self._cond:
            done = self.delivered + self.dropped + self.undelivered
            return DeliveryStats(0 if self._closed else self._remote.pending(done),
                                 self.delivered, self.dropped, self.undelivered, self.failures)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was delivered (True) or ``timeout`` passed."""
        if self._remote is None:
            return super().flush(timeout)
        check_seconds(timeout, "timeout", allow_zero=True)
        return not self._closed and self._remote.flush(timeout)

    def _put(self, kind: str, payload: Any, n: int) -> None:
        if self._remote is None:
            super()._put(kind, payload, n)
        elif n > 0 and self._closing is None:  # its delivery process reads the record itself
            self._remote.count(n)
