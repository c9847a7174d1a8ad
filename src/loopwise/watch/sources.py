"""What the system sampler reads: CPU, RAM and this process (psutil), and the training loop's own
rate from TrainingMonitor's loop statistics. GPU sources live in :mod:`loopwise.watch.gpu`.

A source has a ``name``, a ``read()`` returning ``{quantity: value}`` for this instant, and a
``close()``. An expected failure of its library is raised as :class:`SourceError`; the sampler
records it once and stops reading that source. Quantities (units in the name):

=================  ==========================================================================
``cpu_pct``        whole-machine CPU busy %, over the time since the previous read
``proc_cpu_pct``   this process's CPU %, of one core (4 busy cores read 400)
``ram_pct``        whole-machine RAM in use, %
``proc_rss_mib``   this process's resident memory, MiB (2**20 bytes)
``steps_per_s``    training steps per second since the previous read
``data_wait_pct``  share of loop time spent waiting for the next batch since the previous read
                   (absent when no step completed in between)
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from loopwise.utils.units import MIB


class SourceError(Exception):
    """A source's library failed in an expected way (e.g. the process vanished, NVML lost a GPU)."""


@runtime_checkable
class Source(Protocol):
    name: str

    def read(self) -> Mapping[str, float]: ...

    def close(self) -> None: ...


class LoopStatsLike(Protocol):
    """TrainingMonitor's cumulative loop statistics (``monitor.stats``)."""

    @property
    def steps(self) -> int: ...

    @property
    def data_wait_s(self) -> float: ...

    @property
    def body_s(self) -> float: ...


class HasLoopStats(Protocol):
    """A TrainingMonitor: ``stats`` returns the current :class:`LoopStatsLike` snapshot."""

    @property
    def stats(self) -> LoopStatsLike: ...


class HostSource:
    """Machine CPU and RAM, and this process's CPU and RSS, through psutil.

    The machine CPU % is computed from ``psutil.cpu_times()`` deltas kept on this object, so
    other users of ``psutil.cpu_percent()`` in the process neither disturb it nor are disturbed.
    """

    name = "host"

    def __init__(self, *, psutil_module: Any = None, pid: int | None = None) -> None:
        if psutil_module is None:
            import psutil as psutil_module
        self._ps = psutil_module
        try:
            self._proc = psutil_module.Process(pid)
            self._proc.cpu_percent(None)  # primes the process CPU counter
            self._last_cpu = self._cpu_totals()
        except psutil_module.Error as exc:
            raise SourceError(f"psutil cannot read this process: {exc}") from exc

    def _cpu_totals(self) -> tuple[float, float]:
        t = self._ps.cpu_times()
        total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        idle = t.idle + getattr(t, "iowait", 0.0)
        return float(total), float(idle)

    def read(self) -> dict[str, float]:
        try:
            total, idle = self._cpu_totals()
            proc_cpu = float(self._proc.cpu_percent(None))
            ram = float(self._ps.virtual_memory().percent)
            rss = float(self._proc.memory_info().rss)
        except self._ps.Error as exc:
            raise SourceError(f"psutil failed: {exc}") from exc
        last_total, last_idle = self._last_cpu
        self._last_cpu = (total, idle)
        d_total = total - last_total
        cpu = 100.0 * (d_total - (idle - last_idle)) / d_total if d_total > 0 else 0.0
        return {"cpu_pct": min(max(cpu, 0.0), 100.0), "proc_cpu_pct": proc_cpu,
                "ram_pct": ram, "proc_rss_mib": rss / MIB}

    def close(self) -> None:
        """Nothing to release."""


class LoopSource:
    """Steps/s and data-wait share from successive readings of cumulative loop statistics.

    ``stats`` is either an object whose ``steps``, ``data_wait_s`` and ``body_s`` are live
    counters, or one with a ``stats`` property returning such a snapshot (a TrainingMonitor).
    The first read only takes the baseline (returns nothing). Replacing the statistics object
    (:meth:`attach`, e.g. a new TrainingMonitor per epoch) starts a new baseline.
    """

    name = "loop"

    def __init__(self, stats: LoopStatsLike | HasLoopStats, *,
                 clock: Callable[[], float]) -> None:
        self._clock = clock
        self._read_stats = _stats_getter(stats)
        self._source: object = stats
        self._last: tuple[float, int, float, float] | None = None

    def attach(self, stats: LoopStatsLike | HasLoopStats) -> None:
        self._read_stats = _stats_getter(stats)
        self._source = stats
        self._last = None

    @property
    def stats(self) -> object:
        """The object being followed."""
        return self._source

    def read(self) -> dict[str, float]:
        s = self._read_stats()
        now, steps, wait, body = self._clock(), int(s.steps), float(s.data_wait_s), float(s.body_s)
        last, self._last = self._last, (now, steps, wait, body)
        if last is None:
            return {}
        dt = now - last[0]
        if dt <= 0:
            return {}
        d_steps = steps - last[1]
        if d_steps < 0:  # counters went back (a new monitor reused the object): new baseline
            return {}
        out = {"steps_per_s": d_steps / dt}
        d_wait, d_body = wait - last[2], body - last[3]
        if d_steps > 0 and d_wait >= 0 and d_body >= 0 and d_wait + d_body > 0:
            out["data_wait_pct"] = 100.0 * d_wait / (d_wait + d_body)
        return out

    def close(self) -> None:
        """Nothing to release."""


_FIELDS = ("steps", "data_wait_s", "body_s")


def _stats_getter(stats: object) -> Callable[[], LoopStatsLike]:
    if all(hasattr(stats, a) for a in _FIELDS):
        return lambda: stats  # type: ignore[return-value]
    inner = getattr(stats, "stats", None)
    if inner is not None and all(hasattr(inner, a) for a in _FIELDS):
        return lambda: stats.stats  # type: ignore[attr-defined]
    raise TypeError(
        f"loop_stats must be a TrainingMonitor (with .stats) or have steps, data_wait_s and "
        f"body_s; got {type(stats).__name__}"
    )
