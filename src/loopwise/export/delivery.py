"""The delivery machinery shared by every exporter: a bounded queue and a thread of its own,
retry with backoff, delivery events on the run, and a bounded drain at close.

Every ``log_*`` call of an exporter only appends to a queue (a lock held for microseconds): the
store thread and the training thread never wait for a backend. The delivery thread takes
everything queued, merges it (all columns into one mapping, all events into one list...) and
hands it to the backend's ``_send_*`` methods. When one raises (server down, disk full) the same
payload is retried with exponential backoff (``retry_initial`` doubling up to ``retry_max``
seconds) while new data keeps queueing; past ``max_pending`` points the oldest are dropped and
counted. The first failure and the recovery are recorded as events on the run
(``exporter_failed``, ``exporter_recovered``); at close the queue is drained for at most
``close_timeout`` seconds and what could not be delivered is said (event
``exporter_undelivered`` and one line on stderr, with counts).

With ``delivery="thread"`` this runs in the training process; with ``delivery="process"`` in
the exporter's delivery process (:mod:`loopwise.export.child`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import Any, TextIO

from loopwise.export.link import DeliveryStats, RunLink, check_seconds
from loopwise.export.payload import EventRow, Payload, Sample, merge_items, points_of
from loopwise.record.histogram import Histogram
from loopwise.record.recorder import ColumnData
from loopwise.utils.validate import check_count, check_int


class Delivery:
    """Queue, delivery thread, retries and counts of one exporter (see the module docstring).

    Subclasses implement ``_send_columns``, ``_send_events``, ``_send_system``,
    ``_send_config`` and ``_finish``; optionally ``_open`` (first call on the delivery thread,
    retried like a send) and ``_release`` (always called last, even after a failed drain)."""

    backend = "exporter"

    def __init__(self, *, max_pending: int = 500_000, retry_initial: float = 0.5,
                 retry_max: float = 30.0, close_timeout: float = 10.0,
                 stream: TextIO | None = None) -> None:
        max_pending = check_int(max_pending, what="max_pending", minimum=1,
                                hint="points kept while the backend is unreachable")
        self._retry_initial = check_seconds(retry_initial, "retry_initial")
        self._retry_max = max(check_seconds(retry_max, "retry_max"), self._retry_initial)
        self.close_timeout = check_seconds(close_timeout, "close_timeout", allow_zero=True)
        self.max_pending = max_pending
        self._stream = stream
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

    @property
    def stream(self) -> TextIO:
        """Where what could not be recorded on the run is said (stderr by default)."""
        return self._stream or sys.stderr

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

    def stats(self) -> DeliveryStats:
        with self._cond:
            return DeliveryStats(self._queued, self.delivered, self.dropped, self.undelivered,
                                 self.failures)

    def state_dict(self) -> dict[str, Any]:
        """The delivery counters (a resumed process continues them)."""
        return {"delivered": self.delivered, "dropped": self.dropped,
                "undelivered": self.undelivered, "failures": self.failures}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("delivered", "dropped", "undelivered", "failures"):
            setattr(self, key, check_count(state.get(key, 0), what=f"state[{key!r}]"))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was delivered (True) or ``timeout`` passed."""
        deadline = time.monotonic() + check_seconds(timeout, "timeout", allow_zero=True)
        with self._cond:
            while self._queue or self._busy or self._pending_config is not None:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def wait_taken(self, timeout: float = 30.0) -> bool:
        """Wait until the delivery thread has taken everything queued so far (it may still be
        delivering it: True) or ``timeout`` passed: a reader that hands over the next batch
        then has one batch queued while the previous one is delivered."""
        deadline = time.monotonic() + check_seconds(timeout, "timeout", allow_zero=True)
        with self._cond:
            while self._queue or self._pending_config is not None:
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

    def _send_histogram(self, name: str, hist: Histogram, step: int, wall_time: float) -> None:
        """A binned histogram (a backend without histograms ignores it)."""

    def _send_image(self, name: str, png: bytes, step: int, wall_time: float) -> None:
        """PNG bytes of an image (a backend without images ignores it)."""

    def _send_text(self, name: str, text: str, step: int, wall_time: float) -> None:
        """A text entry (a backend without text ignores it)."""

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
            self._cond.notify_all()  # wait_taken()
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
