"""Delivery shared by every exporter: a bounded queue and a thread of its own, retry with
backoff, delivery events on the run, and a bounded drain at close.

Where it runs (``delivery=``): ``"process"`` (the TensorBoard and MLflow exporters' default)
rebuilds the exporter in a process of its own when it is attached to a run
(:mod:`loopwise.export.process`); that process follows the run's record and delivers with the
machinery below, so that none of the backend's Python work competes with the training thread.
``"thread"`` delivers from a thread of the training process, as follows.

An exporter implements :class:`~loopwise.record.recorder.Recorder`. ``Run.add_exporter`` hands it
the config, then every committed batch from the store's writer thread, then the close. Here every
``log_*`` call only appends to a queue (a lock held for microseconds): the store thread and the
training thread never wait for a backend. The exporter's thread takes everything queued, merges
it (all columns into one mapping, all events into one list...) and hands it to the backend's
``_send_*`` methods. When one raises (server down, disk full) the same payload is retried with
exponential backoff (``retry_initial`` doubling up to ``retry_max`` seconds) while new data keeps
queueing; past ``max_pending`` points the oldest are dropped and counted. The first failure and
the recovery are recorded as events on the run (``exporter_failed``, ``exporter_recovered``);
at close the queue is drained for at most ``close_timeout`` seconds and what could not be
delivered is said (event ``exporter_undelivered`` and one line on stderr, with counts).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

from loopwise.export.link import (
    DeliveryStats,
    EventSink,
    RunLink,
    check_delivery,
    check_seconds,
)
from loopwise.export.payload import EventRow, Payload, Sample, merge_items, points_of
from loopwise.record.recorder import ColumnData

if TYPE_CHECKING:
    from loopwise.export.process import DeliveryProcess
    from loopwise.record.run import Run

__all__ = ["DeliveryStats", "EventSink", "Exporter", "RunLink", "check_seconds"]

class Exporter:
    """Base of the TensorBoard, MLflow and Prometheus exporters (see the module docstring).

    Subclasses implement ``_send_columns``, ``_send_events``, ``_send_system``,
    ``_send_config`` and ``_finish``; optionally ``_open`` (first call on the exporter thread,
    retried like a send) and ``_release`` (always called last, even after a failed drain)."""

    backend = "exporter"
    deliveries: tuple[str, ...] = ("thread", "process")  # the first one is the default
    init_args: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    def __new__(cls, *args: Any, **kwargs: Any) -> Exporter:
        self = super().__new__(cls)
        self.init_args = (args, dict(kwargs))  # how a delivery process rebuilds it
        return self

    def __init__(self, *, max_pending: int = 500_000, retry_initial: float = 0.5,
                 retry_max: float = 30.0, close_timeout: float = 10.0,
                 stream: TextIO | None = None, delivery: str | None = None) -> None:
        if type(max_pending) is not int or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1 (points kept while the backend "
                             f"is unreachable), got {max_pending!r}")
        self._retry_initial = check_seconds(retry_initial, "retry_initial")
        self._retry_max = max(check_seconds(retry_max, "retry_max"), self._retry_initial)
        self.close_timeout = check_seconds(close_timeout, "close_timeout", allow_zero=True)
        self.delivery = check_delivery(self.deliveries[0] if delivery is None else delivery,
                                       self.deliveries, type(self).__name__)
        self.max_pending = max_pending
        self._stream = stream
        self._remote: DeliveryProcess | None = None
        self.link = RunLink()
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, Any, int]] = deque()
        self._queued = 0
        self._pending_config: Mapping[str, Any] | None = None
        self._closing: tuple[str, str | None] | None = None
        self._closed = False
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._failing_since: float | None = None
        self._in_flight = 0  # points taken by the thread and not yet delivered
        self._busy = False
        self.delivered = 0
        self.dropped = 0
        self.failures = 0
        self.undelivered = 0
        self.last_error: str | None = None

    # -- attaching ---------------------------------------------------------------------------
    def bind_run(self, run: Run) -> None:
        """Called by ``Run.add_exporter``: the exporter learns the run's folder, info and global
        step, and records its delivery events on it. With ``delivery="process"`` its delivery
        process starts here."""
        def record(kind: str, message: str, level: str, data: Mapping[str, Any]) -> None:
            run.log_event(kind, message, level=level, data=dict(data))

        self.link = RunLink(path=run.path, info=lambda: run.info,
                            global_step=lambda: run.global_step, record_event=record)
        if self.delivery == "process" and self._remote is None and self._thread is None:
            from loopwise.export.process import DeliveryProcess

            self._remote = DeliveryProcess(self, run.path, run.info)

    @property
    def pid(self) -> int | None:
        """The PID of the delivery process (``delivery="process"``, once attached), else None."""
        return None if self._remote is None else self._remote.pid

    @property
    def stream(self) -> TextIO:
        """Where what could not be recorded on the run is said (stderr by default)."""
        return self._stream or sys.stderr

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

    def close_delivery(self, status: str, error: str | None, *, report: bool = True,
                       left: int = 0) -> None:
        """:meth:`close` on the delivering side; ``left``: points never handed over, counted as
        undelivered; ``report=False`` leaves saying it to the training process."""
        with self._cond:
            if self._closing is not None:
                return
            self._closing = (status, error)
            self._start()
            self._cond.notify()
        assert self._thread is not None
        self._thread.join(self.close_timeout)
        if self._thread.is_alive():
            self._abandon.set()  # stop retrying; what is left is counted below
            self._thread.join(min(self.close_timeout, 2.0) + 0.5)
        with self._cond:
            self.undelivered += self._queued + self._in_flight + left
            self._queue.clear()
            self._queued = 0
            self._closed = True
        if report:
            self._report_undelivered()

    def absorb(self, state: Mapping[str, Any], last_error: str | None) -> None:
        """The delivery process's counts and state (``delivery="process"``)."""
        with self._cond:
            self.load_state_dict(state)
            self.last_error = last_error

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> DeliveryStats:
        with self._cond:
            queued = self._queued if self._remote is None or self._closed else \
                self._remote.pending(self.delivered + self.dropped + self.undelivered)
            return DeliveryStats(queued, self.delivered, self.dropped, self.undelivered,
                                 self.failures)

    def state_dict(self) -> dict[str, Any]:
        """The delivery counters (a resumed process continues them)."""
        return {"delivered": self.delivered, "dropped": self.dropped,
                "undelivered": self.undelivered, "failures": self.failures}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("delivered", "dropped", "undelivered", "failures"):
            value = state.get(key, 0)
            if type(value) is not int or value < 0:
                raise ValueError(f"state[{key!r}] must be a non-negative int, got {value!r}")
            setattr(self, key, value)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was delivered (True) or ``timeout`` passed."""
        deadline = time.monotonic() + check_seconds(timeout, "timeout", allow_zero=True)
        if self._remote is not None:
            return not self._closed and self._remote.flush(timeout)
        with self._cond:
            while self._queue or self._busy or self._pending_config is not None:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- backend hooks -------------------------------------------------------------------------
    def _open(self) -> None:
        """Connect / create the backend run (exporter thread, retried on failure)."""

    def _send_columns(self, columns: Mapping[str, ColumnData]) -> None:
        raise NotImplementedError

    def _send_events(self, events: Sequence[EventRow]) -> None:
        raise NotImplementedError

    def _send_system(self, samples: Sequence[Sample]) -> None:
        raise NotImplementedError

    def _send_config(self, config: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _finish(self, status: str, error: str | None) -> None:
        """The run ended (``finished``, ``failed``, ``interrupted``): final status, artifacts."""

    def _release(self) -> None:
        """Free local resources (files, sockets); called last, whatever happened."""

    def _reset(self) -> None:
        """A send failed: drop the connection / file so that :meth:`_open` makes a new one."""

    # -- internals -----------------------------------------------------------------------------
    def _put(self, kind: str, payload: Any, n: int) -> None:
        if n <= 0:
            return
        if self._remote is not None:  # its delivery process reads the record itself
            if self._closing is None:
                self._remote.count(n)
            return
        with self._cond:
            if self._closing is not None:
                return  # the run is over for this exporter (its own close events come back here)
            self._queue.append((kind, payload, n))
            self._queued += n
            while self._queued > self.max_pending and len(self._queue) > 1:
                _, _, lost = self._queue.popleft()
                self._queued -= lost
                self.dropped += lost
            self._start()
            self._cond.notify()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"loopwise-export-{self.backend}")
            self._thread.start()

    def _take(self) -> tuple[Mapping[str, Any] | None, list[tuple[str, Any, int]], bool]:
        with self._cond:
            while not self._queue and self._pending_config is None and self._closing is None:
                self._cond.wait()
            config, self._pending_config = self._pending_config, None
            items = list(self._queue)
            self._queue.clear()
            self._in_flight = self._queued
            self._queued = 0
            self._busy = True
            return config, items, self._closing is not None

    def _loop(self) -> None:
        try:
            while not self._abandon.is_set():
                config, items, closing = self._take()
                payload = merge_items(items)
                ok = config is None or self._deliver(partial(self._send_config, config), 0)
                ok = ok and self._deliver_payload(payload)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
                if not ok:
                    return
                if closing:
                    with self._cond:
                        more = bool(self._queue) or self._pending_config is not None
                    if not more:
                        status, error = self._closing or ("finished", None)
                        self._deliver(partial(self._finish, status, error), 0)
                        return
        finally:
            try:
                self._release()
            except Exception as exc:  # a backend that cannot even close its files: say so
                self.last_error = f"{type(exc).__name__}: {exc}"

    def _deliver_payload(self, payload: Payload) -> bool:
        if payload.columns and not self._deliver(
                lambda: self._send_columns(payload.columns), points_of(payload.columns)):
            return False
        if payload.events and not self._deliver(
                lambda: self._send_events(payload.events), len(payload.events)):
            return False
        if payload.system and not self._deliver(
                lambda: self._send_system(payload.system), len(payload.system)):
            return False
        return all(self._deliver(call, 1) for call in payload.calls)

    def _deliver(self, send: Callable[[], None], n: int) -> bool:
        """Call ``send`` until it works (True) or the close gives up on it (False)."""
        delay = self._retry_initial
        while True:
            try:
                if not self._opened:
                    self._open()
                    self._opened = True
                send()
            except Exception as exc:
                if self._opened:
                    self._opened = False  # the next attempt reconnects / reopens
                    with suppress(Exception):  # already broken: the reopen says what is wrong
                        self._reset()
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    self._note("exporter_failed", "warning",
                               f"{type(self).__name__} could not deliver to {self.backend} "
                               f"({self.last_error}); retrying with backoff, keeping up to "
                               f"{self.max_pending} points", {"error": self.last_error})
                if self._abandon.wait(delay):
                    return False
                delay = min(delay * 2, self._retry_max)
                continue
            with self._cond:
                self.delivered += n
                self._in_flight = max(0, self._in_flight - n)
            if self._failing_since is not None:
                down = time.monotonic() - self._failing_since
                self._failing_since = None
                self._note("exporter_recovered", "info",
                           f"{type(self).__name__} delivers to {self.backend} again after "
                           f"{down:.1f} s of failures", {"down_s": round(down, 3),
                                                         "dropped": self.dropped})
            return True

    def _note(self, kind: str, level: str, message: str, data: Mapping[str, Any]) -> None:
        sink = self.link.record_event
        if sink is not None:
            try:
                sink(kind, message, level, {"exporter": type(self).__name__, **data})
                return
            except Exception:  # the run is already closed: stderr is all that is left
                pass
        print(f"loopwise: {message}", file=self.stream)

    def _report_undelivered(self) -> None:
        if not (self.undelivered or self.dropped):
            return
        name = type(self).__name__
        message = (f"{name} could not deliver {self.undelivered + self.dropped} points to "
                   f"{self.backend}: {self.dropped} dropped while it was unreachable (queue "
                   f"full), {self.undelivered} left at close after {self.close_timeout:g} s"
                   + (f"; last error: {self.last_error}" if self.last_error else ""))
        print(f"loopwise: {message}", file=self.stream)
        sink = self.link.record_event
        if sink is not None:
            with suppress(Exception):  # the run closed before its exporters: stderr stays
                sink("exporter_undelivered", message, "warning",
                     {"exporter": name, "dropped": self.dropped,
                      "undelivered": self.undelivered, "delivered": self.delivered,
                      "error": self.last_error})
