"""The system sampler: a daemon thread recording CPU, RAM, GPU and loop-rate statistics.

Every ``interval`` seconds (default 2 s) it writes one system sample to the run
(``run.log_system``) holding, for each quantity (see :mod:`loopwise.watch.sources` and
:mod:`loopwise.watch.gpu` for names and units), the mean under the plain name and the extremes
under ``<name>.min`` and ``<name>.max``. Within an interval it reads its sources ``subsamples``
times (default 4: every 0.5 s), so min and max are over those readings; for the rates (CPU %,
steps/s, data-wait share) each reading covers the time since the previous one.

The thread is a daemon (it never keeps the process alive), never runs on the training thread,
and stops when the run closes (:func:`ensure_system_monitor` registers ``stop`` with
``run.on_close``); ``stop`` writes the last, partial interval. Without NVML or without a GPU the
run gets one info event (``system.gpu_unavailable``) and nothing else is said about it. A source
whose library fails is recorded once as a warning and dropped.

There is no ``state_dict``: the sampler measures the present and has nothing to resume.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from loopwise.utils.validate import check_int, check_positive
from loopwise.watch.sources import (
    HasLoopStats,
    HostSource,
    LoopSource,
    LoopStatsLike,
    Source,
    SourceError,
)

DEFAULT_INTERVAL = 2.0
DEFAULT_SUBSAMPLES = 4
STOP_TIMEOUT_S = 5.0

Subscriber = Callable[[float, Mapping[str, float]], object]


class SampleSink(Protocol):
    """What the sampler needs from a run (``loopwise.record.Run`` fits)."""

    def log_system(self, values: Mapping[str, float]) -> None: ...

    def log_event(self, kind: str, message: str, *, level: str = ...,
                  data: Mapping[str, Any] | None = ...) -> None: ...


def check_interval(interval: object) -> float:
    return check_positive(interval, what="interval", hint="seconds; default 2.0")


class _Acc:
    __slots__ = ("hi", "lo", "n", "total")

    def __init__(self, value: float) -> None:
        self.lo = self.hi = self.total = value
        self.n = 1

    def add(self, value: float) -> None:
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)
        self.total += value
        self.n += 1


class SystemMonitor:
    """Samples ``sources`` (default: host, NVML GPUs, torch CUDA memory) on a daemon thread.

    ``run``: where samples and events go (None: only to subscribers and :attr:`last_sample`).
    ``clock``: monotonic seconds for the interval bookkeeping (inject a fake in tests and drive
    :meth:`tick` by hand). ``wall_clock``: the time passed to subscribers. ``nvml``: the NVML
    module to use (default ``pynvml``).
    """

    def __init__(self, run: SampleSink | None = None, *, interval: float = DEFAULT_INTERVAL,
                 subsamples: int = DEFAULT_SUBSAMPLES,
                 loop_stats: LoopStatsLike | HasLoopStats | None = None,
                 sources: Sequence[Source] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, nvml: Any = None) -> None:
        self.interval = check_interval(interval)
        check_int(subsamples, what="subsamples", minimum=1, hint="readings per interval")
        if sources is not None:
            for s in sources:
                if not isinstance(s, Source):
                    raise TypeError(f"{s!r} is not a sampler source (needs name, read, close)")
        self.subsamples = subsamples
        self.period = self.interval / subsamples
        self.run = run
        self._clock = clock
        self._wall = wall_clock
        self._nvml = nvml
        self._given_sources = None if sources is None else list(sources)
        self._sources: list[Source] | None = None
        self._loop = None if loop_stats is None else LoopSource(loop_stats, clock=clock)
        self._subscribers: list[Subscriber] = []
        self._acc: dict[str, _Acc] = {}
        self._window_start: float | None = None
        self._lock = threading.RLock()
        self._stop_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._crashed = False  # the thread stopped on an unexpected error
        self.samples_written = 0
        self.last_sample: dict[str, float] | None = None
        self.gpu_status: str | None = None

    # -- wiring ------------------------------------------------------------------------------
    def attach_loop_stats(self, stats: LoopStatsLike | HasLoopStats) -> None:
        """Follow a (new) TrainingMonitor's ``stats``; rates restart from its current counts."""
        with self._lock:
            if self._loop is None:
                self._loop = LoopSource(stats, clock=self._clock)
            else:
                self._loop.attach(stats)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(wall_time, sample)`` after each sample (on the sampler's thread)."""
        if not callable(callback):
            raise TypeError("subscribe needs a callable taking (time, sample)")
        with self._lock:
            self._subscribers.append(callback)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SystemMonitor:
        """Start the daemon thread (once)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this SystemMonitor was stopped; make a new one")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loopwise-system",
                                                daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread, write the partial last interval, release the sources. Idempotent."""
        with self._stop_lock:  # not self._lock: a tick stuck in a source call holds that one
            if self._stopped:
                return
            self._stopped = True
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                self._event("system.sampler_stuck", "warning",
                            f"the system sampler did not stop within {timeout:g} s (a source "
                            "call hangs?); it is left behind as a daemon thread")
                return
        if self.samples_written == 0 and not self._acc and not self._given_up():
            # a run shorter than one sampling period still gets one sample: read now (the
            # first tick only takes the baseline)
            if self._sources is None:
                self.tick()
            self.tick()
        with self._lock:
            if self._acc:
                self._emit()
            for source in self._sources or ():
                self._close_source(source)
            if self._loop is not None:
                self._loop.close()

    def _given_up(self) -> bool:
        """The sampler stopped on an error, or has no source left to read."""
        return self._crashed or (self._sources is not None
                                                    and not self._sources)

    # -- sampling ----------------------------------------------------------------------------
    def tick(self) -> dict[str, float] | None:
        """Take one reading; return the sample when this reading completes an interval.

        The first call opens the sources and takes the baseline readings (nothing recorded).
        """
        with self._lock:
            now = self._clock()
            if self._sources is None:
                self._sources = self._open_sources()
                self._read_all()
                if self._loop is not None:
                    self._loop.read()
                self._acc.clear()
                self._window_start = now
                return None
            for name, value in self._read_all().items():
                acc = self._acc.get(name)
                if acc is None:
                    self._acc[name] = _Acc(value)
                else:
                    acc.add(value)
            assert self._window_start is not None
            if now - self._window_start < self.interval - self.period / 2:
                return None
            self._window_start = now
            return self._emit() if self._acc else None

    def _read_all(self) -> dict[str, float]:
        values: dict[str, float] = {}
        assert self._sources is not None
        for source in list(self._sources):
            try:
                values.update(source.read())
            except SourceError as exc:
                self._sources.remove(source)
                self._event("system.source_failed", "warning",
                            f"system source {source.name!r} stopped: {exc}",
                            {"source": source.name})
                self._close_source(source)
        if self._loop is not None:
            values.update(self._loop.read())
        return {k: float(v) for k, v in values.items() if math.isfinite(v)}

    def _emit(self) -> dict[str, float]:
        sample: dict[str, float] = {}
        for name, acc in self._acc.items():
            sample[name] = acc.total / acc.n
            sample[name + ".min"] = acc.lo
            sample[name + ".max"] = acc.hi
        self._acc.clear()
        self.last_sample = sample
        if self.run is not None and not getattr(self.run, "closed", False):
            self.run.log_system(sample)
        self.samples_written += 1
        wall = self._wall()
        for callback in list(self._subscribers):
            callback(wall, sample)
        return sample

    def _open_sources(self) -> list[Source]:
        if self._given_sources is not None:
            return list(self._given_sources)
        from loopwise.watch.gpu import GpuUnavailable, NvmlSource, TorchMemorySource

        sources: list[Source] = []
        try:
            sources.append(HostSource())
        except SourceError as exc:
            self._event("system.source_failed", "warning", f"no CPU/RAM statistics: {exc}")
        try:
            nvml_source = NvmlSource.open(nvml=self._nvml)
        except GpuUnavailable as exc:
            self.gpu_status = str(exc)
            self._event("system.gpu_unavailable", "info", f"{exc}; recording CPU and RAM only",
                        {"reason": str(exc)})
        else:
            sources.append(nvml_source)
            self.gpu_status = nvml_source.describe()
            self._event("system.gpu", "info", f"GPU telemetry: {self.gpu_status}",
                        {"gpus": nvml_source.device_names})
        sources.append(TorchMemorySource())
        return sources

    def _close_source(self, source: Source) -> None:
        try:
            source.close()
        except SourceError as exc:
            self._event("system.source_failed", "warning",
                        f"closing system source {source.name!r} failed: {exc}")

    def _event(self, kind: str, level: str, message: str,
               data: Mapping[str, Any] | None = None) -> None:
        if self.run is not None and not getattr(self.run, "closed", False):
            self.run.log_event(kind, message, level=level, data=data)

    def _run(self) -> None:
        try:
            self.tick()
            due = time.monotonic() + self.period
            while not self._stop_event.wait(max(0.0, due - time.monotonic())):
                self.tick()
                due += self.period
                now = time.monotonic()
                if due < now:  # fell behind (suspended machine, slow source): skip, not burst
                    due = now + self.period
        except Exception as exc:  # recorded, not swallowed: the run says why sampling stopped
            self._crashed = True
            self._event("system.sampler_error", "error",
                        f"the system sampler stopped: {type(exc).__name__}: {exc}",
                        {"traceback": traceback.format_exc()})

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "idle")
        return f"SystemMonitor(interval={self.interval:g}, {state}, samples={self.samples_written})"
