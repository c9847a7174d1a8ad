"""The process's active run: successive TrainingMonitors with no ``run=`` share one run.

Seed 000's multi-epoch loop makes a new ``TrainingMonitor`` per epoch; those monitors join the
run the first one made and continue its global step (steps 1..N over all epochs, one run
folder), until that run is closed (``monitor.close()``, the end of a ``with`` block,
:func:`end_active_run`) or the process ends. ``run=`` chooses another run; ``name=`` names the
run: a monitor per epoch with the same ``name`` continues it (:func:`joinable`), another name
starts another run. A ``phase="val"`` monitor validates the active run wherever it lives.

The active run is held in a :class:`contextvars.ContextVar`, the standard library's "current
object" idiom (as ``decimal``'s context): one per thread and asyncio task, nothing at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from loopwise.record.opening import end_run, open_run
from loopwise.record.run import Run

_ACTIVE: ContextVar[Run | None] = ContextVar("loopwise_active_run", default=None)


def active_run(root: str | os.PathLike[str] | None = None) -> Run | None:
    """The open active run (under ``root`` when given), or None."""
    run = _ACTIVE.get()
    if run is None or run.closed:
        return None
    if root is not None and run.path.parent != Path(root).absolute():
        return None
    return run


def set_active_run(run: Run | None) -> None:
    """Make ``run`` the active run (None: no active run)."""
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"the active run must be a loopwise Run, got {type(run).__name__}")
    _ACTIVE.set(run)


def end_active_run(status: str = "finished") -> None:
    """Close the active run (``finished`` by default) and forget it; no-op without one."""
    run = _ACTIVE.get()
    _ACTIVE.set(None)
    if run is not None:
        end_run(run, status=status)  # the one end of a run


def monitor_run(run: Run | None, *, record: bool, root: str | os.PathLike[str],
                name: str | None, config: Mapping[str, Any] | None,
                phase: str = "train") -> Run | None:
    """The run a TrainingMonitor writes to: ``run`` when given; else, with ``record``, the
    active run it continues (:func:`joinable`) or a new one (:func:`~loopwise.record.opening.
    open_run`), which becomes the active run. ``config`` is written to it."""
    if run is None and record:
        found = joinable(root, name, phase=phase)
        if found is None:
            run = open_run(root, name, config=config).run
            set_active_run(run)
            return run
        run = found
    if run is not None and config is not None:
        run.set_config(config)
    return run


def joinable(root: str | os.PathLike[str], name: str | None, *, phase: str = "train") -> Run | None:
    """The active run a monitor continues, as users write loops (a new monitor per epoch):
    with ``name``, the active run of that name (its global step continues: no second folder);
    without, the active run. A training monitor continues it only under its own ``root`` (a
    monitor given another root starts a run there); a ``phase="val"`` monitor validates the
    run being trained, wherever it is: its ``root`` only places a run it has to make."""
    run = active_run(None if phase != "train" else root)
    if run is None or (name is not None and run.name != name):
        return None
    return run
