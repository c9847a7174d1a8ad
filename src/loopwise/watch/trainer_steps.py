"""What the Lightning and Hugging Face front doors share: the run they record into (a new one,
or the one a checkpoint was written into, reopened) and the per-step values of a trainer that
counts its own global step, handed to the one :class:`~loopwise.watch.accumulator.StepAccumulator`.

The trainer says at which global step each value was taken (``TrainerSteps.add(step,
values)``); values may be device tensors, read at the refresh in one transfer (no sync per
step). After a resume from a checkpoint taken at step ``S`` of a run whose record already holds
steps up to ``L > S`` (the process was killed after the checkpoint), the steps ``S+1 .. L`` run
again: their values are already in the record and are not recorded a second time, so every
step is in the record once.

What else the two front doors share lives here too: their common options checked
(:func:`check_options`), their exporters attached (:func:`attach_exporters`) and the end of
their run (:func:`end_trainer_run`: the pending values handed over, then the one end of a run).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from loopwise.record import opening
from loopwise.record.folder import is_run_folder
from loopwise.record.opening import end_run, exists_error, reopen_run, run_finished
from loopwise.record.reader import RunReader
from loopwise.record.recorder import Recorder, check_exporters
from loopwise.record.run import Run
from loopwise.utils.jsonsafe import json_safe
from loopwise.utils.validate import check_key, check_positive
from loopwise.watch.accumulator import StepAccumulator
from loopwise.watch.convert import to_float, to_value
from loopwise.watch.health.runner import HealthMonitor, ensure_health_monitor
from loopwise.watch.loopstats import LoopStats

__all__ = ["TrainerSteps", "attach_exporters", "check_options", "end_trainer_run", "json_config",
           "open_run"]


def check_options(*, run: Run | None, root: object, name: object, config: object,
                  flush_interval: object, exporters: Iterable[object]) -> list[Recorder]:
    """Check a front door's common options (``TypeError``/``ValueError`` naming what was wrong);
    returns the exporters as a list."""
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string (the run's folder name), got "
                        f"{type(name).__name__}")
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    check_positive(flush_interval, what="flush_interval", hint="seconds")
    return check_exporters(exporters)


def attach_exporters(run: Run, exporters: Iterable[Recorder]) -> None:
    """Attach each of ``exporters`` the run does not have yet (a reopened run gets them again)."""
    for exporter in exporters:
        if exporter not in run.exporters:
            run.add_exporter(exporter)


def end_trainer_run(run: Run | None, steps: TrainerSteps | None, status: str = "finished", *,
                    error: str | None = None, own: bool = True) -> None:
    """End a front door's run: the values ``steps`` holds handed over, an ``interrupted`` event
    for Ctrl-C, then the one end of a run (:func:`~loopwise.record.opening.end_run`): closed
    with ``status`` when the front door made it (``own``), else only flushed."""
    if run is None or run.closed:
        return
    if steps is not None and steps.run is run:
        steps.flush()
    if status == "interrupted":
        run.log_event("interrupted", "interrupted by Ctrl-C", level="warning")
    end_run(run, status=status, error=error, own=own)


def json_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """A trainer's parameters as ``config.json`` holds them: what JSON cannot hold (a module, a
    path, an enum) as its text, non-finite numbers as ``null``."""
    if not isinstance(values, Mapping):
        raise TypeError(f"config must be a dict, got {type(values).__name__}")
    text = json.dumps({str(k): v for k, v in values.items()}, default=str)
    loaded: dict[str, Any] = json_safe(json.loads(text))
    return loaded


def open_run(*, previous: str | os.PathLike[str] | None, root: str | os.PathLike[str],
             name: str | None, config: Mapping[str, Any], resuming: bool) -> Run:
    """The run a trainer records into: the one a checkpoint was written into (``previous``,
    reopened, its config updated) when it still exists; when ``resuming`` with no such run, the
    unfinished run ``root/name`` reopened; else a new run ``root/name``."""
    folder = None if previous is None else Path(previous)
    if folder is not None and is_run_folder(folder):
        run = reopen_run(folder)  # through the one opener (loopwise.record.opening)
        run.set_config({**RunReader(folder).config(), **config})
        return run

    def decide(named: Path, info: dict[str, Any]) -> str:
        if folder is None and resuming and not run_finished(info):
            return "resume"
        raise exists_error(named)

    opened = opening.open_run(root, name, config=dict(config), decide=decide)
    assert opened.run is not None
    if opened.action == "resume":
        opened.run.set_config({**RunReader(opened.path).config(), **config})
    return opened.run


class TrainerSteps:
    """Per-step values at the trainer's own global step -> the run, through the accumulator.

    ``health``: feed the run's health monitor (one mean per key per refresh). ``interval``:
    seconds between refreshes (the values are read and handed to the run then)."""

    def __init__(self, run: Run, *, health: bool = True, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        interval = check_positive(interval, what="flush_interval", hint="seconds")
        self.run = run
        self.health: HealthMonitor | None = ensure_health_monitor(run) if health else None
        self.accumulator = StepAccumulator(run, health=self.health)
        self.recorded = run.global_step  # the record's last step when the run was opened
        self._interval = float(interval)
        self._clock = clock
        self._next = clock() + self._interval
        self._first = run.global_step

    @property
    def step(self) -> int:
        return self.accumulator.step

    def start_at(self, step: int, *, epoch: int | None = None) -> None:
        """The trainer starts (or resumes from a checkpoint) at global step ``step``."""
        self.accumulator.restart_at(step, epoch=epoch)
        self._first = step

    def add(self, step: int, values: Mapping[str, Any]) -> None:
        """The values taken at global step ``step`` (floats or one-element tensors, kept as
        they are until the refresh). A step the record already holds (run again after a
        resume) only moves the run's step on (its values count in the epoch's means)."""
        acc = self.accumulator
        if step <= self.recorded:
            if step > acc.step:
                acc.restart_at(step)
            replayed = {k: to_value(k, v) for k, v in values.items()}  # the epoch's means
            acc.averages.add_columns({k: ([step], [0.0], [v]) for k, v in replayed.items()
                                      if isinstance(v, float)})
            return
        if step < acc.step or (step == acc.step and not acc.times):
            # a late value for a step already handed over: recorded directly, as a float
            self.flush()
            late = {check_key(k): to_float(k, v) for k, v in values.items()}
            now = time.time()
            acc.averages.add_columns({k: ([step], [now], [v]) for k, v in late.items()})
            self.run.log_scalars(late, step=step, wall_time=now)
            return
        index = step - acc.step0
        if step > acc.step:
            acc.add_steps([step], {})  # the wall times of the steps up to ``step``
        pending = acc.pending
        for key, value in values.items():
            col = pending.get(key)
            if col is None:
                check_key(key)
                col = pending[key] = ([], [])
            if type(value) is not float:
                value = to_value(key, value)
                if type(value) is not float:
                    acc.has_device_values = True
            col[0].append(index)
            col[1].append(value)
        if values and self._clock() >= self._next:  # a bare step waits for its values
            self.flush()

    def flush(self) -> None:
        """Read the window's values and hand them to the run (and the health monitor)."""
        self._next = self._clock() + self._interval
        if not self.run.closed:
            self.accumulator.flush()

    def means(self) -> dict[str, float]:
        """The running means of the values since :meth:`reset_means` (an epoch's)."""
        self.flush()
        return self.accumulator.means()

    def reset_means(self) -> None:
        self.accumulator.reset_means()

    @property
    def stats(self) -> LoopStats:
        """Steps done since the trainer started (the system sampler's steps/s)."""
        return LoopStats(max(0, self.accumulator.step - self._first), 0.0, 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.accumulator.step, "recorded": self.recorded}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "step" not in state:
            raise KeyError("TrainerSteps state is missing 'step'")
        self.recorded = max(self.recorded, int(state.get("recorded", 0)))
        self.start_at(int(state["step"]))
