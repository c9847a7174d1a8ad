"""The run's one system sampler: :func:`ensure_system_monitor` (started on the first call,
stopped when the run closes) and the ``system=`` option of fit and Workflow."""

from __future__ import annotations

import math
import warnings

from loopwise.distributed.group import TrainGroup
from loopwise.distributed.local import SampleBuffer
from loopwise.record.run import Run
from loopwise.watch.sources import HasLoopStats, LoopStatsLike
from loopwise.watch.system import DEFAULT_INTERVAL, SystemMonitor, check_interval

__all__ = ["ensure_system_monitor", "start_rank_system", "system_option"]


def system_option(system: object) -> tuple[bool, float | None]:
    """Read the ``system=`` option of fit and Workflow: ``(start a sampler?, interval)``.

    ``True``: the run's sampler at the default interval, or the one already running on the run
    (interval None); a number: the sampling interval in seconds; ``False``: no sampler.
    """
    if isinstance(system, bool):
        return system, None
    if isinstance(system, (int, float)) and math.isfinite(system) and system > 0:
        return True, float(system)
    raise ValueError(f"system must be True (sample every {DEFAULT_INTERVAL:g} s, or keep the "
                     f"sampler already running on the run), False (none) or a sampling interval "
                     f"in seconds > 0; got {system!r}")


def ensure_system_monitor(run: Run, *, interval: float | None = None,
                          loop_stats: LoopStatsLike | HasLoopStats | None = None,
                          ) -> SystemMonitor:
    """The run's one background SystemMonitor, started on the first call (every ``interval``
    seconds; None: the default, 2 s) and stopped when the run closes. Later calls return the
    same monitor and attach ``loop_stats`` when given; its interval stays the first call's, and
    a later call that asks for another one gets a warning saying so. A HealthMonitor made with
    ``ensure_health_monitor`` is subscribed to its samples.
    """
    if interval is not None:
        check_interval(interval)
    for method in ("log_system", "log_event", "on_close", "helper"):
        if not callable(getattr(run, method, None)):
            raise TypeError(f"run must be a loopwise Run, got {type(run).__name__} "
                            f"(no {method}())")
    existing: SystemMonitor | None = run.find_helper(SystemMonitor)
    if existing is None:
        if getattr(run, "closed", False):
            raise RuntimeError("the run is closed; start the system sampler while it is open")
        made: list[SystemMonitor] = []

        def make() -> SystemMonitor:
            made.append(SystemMonitor(run, interval=interval or DEFAULT_INTERVAL,
                                      loop_stats=loop_stats))
            return made[0]

        existing = run.helper(SystemMonitor, make)  # two threads racing agree on one monitor
        if made and existing is made[0]:
            from loopwise.watch.health.runner import HealthMonitor

            health = run.find_helper(HealthMonitor)
            if health is not None:
                existing.subscribe(health.observe_system)
            run.on_close(existing.stop)
            existing.start()
            return existing
    assert existing is not None
    if interval is not None and interval != existing.interval:
        warnings.warn(f"the run's system sampler already samples every {existing.interval:g} s; "
                      f"interval={interval:g} is ignored (the sampler's first start sets it)",
                      UserWarning, stacklevel=2)
    if loop_stats is not None:
        existing.attach_loop_stats(loop_stats)
    return existing


def start_rank_system(group: TrainGroup, loop_stats: LoopStatsLike | HasLoopStats, *,
                      interval: float | None = None) -> None:
    """Under ``torchrun``: this process's one system sampler (every rank samples), writing into
    the group's sample buffer (``group``: a :class:`~loopwise.distributed.group.TrainGroup`),
    which the next exchange drains to rank 0's run. A second call
    attaches ``loop_stats`` to the sampler already running."""
    state = group.state
    if state.sampler is not None:
        state.sampler.attach_loop_stats(loop_stats)
        return
    sampler = SystemMonitor(SampleBuffer(), interval=interval or DEFAULT_INTERVAL,
                            loop_stats=loop_stats)
    state.sampler = sampler
    sampler.start()
