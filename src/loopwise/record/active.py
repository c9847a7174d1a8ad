"""The process's active run: successive TrainingMonitors with no ``run=`` share one run.

Seed 000's multi-epoch loop makes a new ``TrainingMonitor`` per epoch; those monitors join the
run the first one made and continue its global step (steps 1..N over all epochs, one run
folder), until that run is closed (``monitor.close()``, the end of a ``with`` block,
:func:`end_active_run`) or the process ends. ``name=`` or ``run=`` start or choose another run.

The active run is held in a :class:`contextvars.ContextVar`, the standard library's "current
object" idiom (as ``decimal``'s context): one per thread and asyncio task, nothing at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

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
    if run is not None and not run.closed:
        run.close(status)


def monitor_run(run: Run | None, *, record: bool, root: str | os.PathLike[str],
                name: str | None, config: Mapping[str, Any] | None) -> Run | None:
    """The run a TrainingMonitor writes to: ``run`` when given; else, with ``record``, the
    active run under ``root`` (no ``name``) or a new one, which becomes the active run.
    ``config`` is written to it."""
    if run is None and record:
        found = active_run(root) if name is None else None
        run = found if found is not None else Run.create(root, name, config=config)
        set_active_run(run)
        if found is None:
            return run
    if run is not None and config is not None:
        run.set_config(config)
    return run
