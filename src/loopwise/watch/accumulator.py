"""The one loop-side accumulator: TrainingMonitor, TrainingSession and fit all log through it.

The step path only appends: a step's start time to :attr:`StepAccumulator.times` and each
value to its key's column in :attr:`StepAccumulator.pending` (``(step indexes, values)``, index
``len(times)`` at the call). At each refresh :meth:`StepAccumulator.flush`:

1. reads the device tensors of the window in one transfer per device (``watch/convert.py``);
2. turns the window into ``(steps, wall_times, values)`` columns (``watch/window.py``);
3. advances the run's global step by the steps of the window (``Run.advance``);
4. folds the values into the one running mean (:class:`~loopwise.watch.metrics.RunningAverages`,
   weighted by batch size where the loop knows it) and the optional CSV (``watch/fold.py``);
5. hands the columns to the recorder (``Run.log_columns``; exporters get them from the store);
6. feeds the health monitor one mean per key and its highest point (the spike detector judges
   that point, and names its step and value), and reports a non-finite value at its exact step.

:class:`LoopStats` is the one loop-timing record (steps, data wait, body time) that the
system sampler reads."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor as _Tensor

from loopwise.record.run import Run
from loopwise.utils.validate import check_key
from loopwise.watch.convert import read_tensor_slots, to_value
from loopwise.watch.csvlog import CsvLog
from loopwise.watch.display import shown_values
from loopwise.watch.fold import fold_window
from loopwise.watch.health.runner import HealthMonitor
from loopwise.watch.loopstats import LoopStats
from loopwise.watch.metrics import RunningAverages, column_sum
from loopwise.watch.window import PendingColumn, Window, take_columns

__all__ = ["LoopStats", "StepAccumulator", "user_stacklevel"]

_INT_MAX = 1e308  # an int at least this big may not fit a float64: checked on the slow path
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside loopwise (the
    user's line), for ``warnings.warn`` called from loopwise code."""
    import sys

    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class StepAccumulator:
    """Pending values of the current refresh window, the running means of the pass, and the
    hand-over to the run. ``run=None`` keeps only the means (``record=False``)."""

    def __init__(self, run: Run | None, *, csv: CsvLog | None = None,
                 health: HealthMonitor | None = None,
                 clock: Callable[[], float] = time.time,
                 perf: Callable[[], float] = time.perf_counter) -> None:
        self.run = run
        self.csv = csv
        self.health = health
        self.times: list[float] = []
        self.pending: dict[str, PendingColumn] = {}
        self.weights: dict[str, list[float]] = {}
        self.has_device_values = False
        self.averages = RunningAverages()
        self.stats = LoopStats()
        self.last: dict[str, float] = {}
        self.step0 = run.global_step if run is not None else 0
        self._perf = perf
        self._to_wall = clock() - perf()
        self._time_before = perf()
        self._warned_nonfinite = False
        self.reducer: Any = None  # under torchrun: distributed.reducer.Reducer
        self.closed = False  # set by the owner: log() then raises
        self.immediate = False  # set by the owner after its loop: log() is flushed at once
        self.plain = False  # the last log() took the straight path (plain numbers, known keys)

    @property
    def step(self) -> int:
        """The global step: steps flushed plus the steps of the open window."""
        return self.step0 + len(self.times)

    # -- the step path ---------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any]) -> None:
        """One step's values (TrainingMonitor.log and TrainingSession call this).

        Plain floats/ints and one-element CPU tensors of a real dtype (read now, as the
        converter does) under known keys go straight into their column; anything else (a new
        key, a device tensor, a NumPy scalar, a Mapping that is not a dict) is undone and takes the
        checked path :meth:`add`: a log() is all or nothing. :attr:`plain` says which path the
        last call took (True: every value a plain number under a checked key)."""
        if type(metrics) is dict and not self.closed and not self.immediate:
            pending = self.pending
            index = len(self.times)
            plain = True
            for key, value in metrics.items():
                kind = type(value)
                if kind is _Tensor and value.is_cpu:  # a CPU loss: read now, as to_value does
                    plain = False
                    if value.numel() == 1:  # else the checked path says what is wrong
                        value = value.item()
                        kind = type(value)
                if kind is float or (kind is int and -_INT_MAX < value < _INT_MAX):
                    col = pending.get(key)
                    if col is not None:
                        col[0].append(index)
                        col[1].append(value)
                        continue
                self._undo(metrics, key)
                self.plain = False
                return self._log_checked(metrics)
            self.plain = plain
            return None
        self.plain = False
        return self._log_checked(metrics)

    def _undo(self, metrics: Mapping[str, Any], stop: str) -> None:
        for key in metrics:
            if key == stop:
                return
            col = self.pending[key]
            col[0].pop()
            col[1].pop()

    def _log_checked(self, metrics: Mapping[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("this TrainingMonitor is closed: nothing logged after close() is "
                               "recorded; log() before close(), or pass run= to a new monitor "
                               "to keep logging to the same run")
        self.add(metrics)
        if self.immediate:  # after the loop (inside a with block): recorded at once
            self.flush()

    def add(self, metrics: Mapping[str, Any]) -> None:
        """Check and append one log() call's values (all or nothing) at the current step."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"log() takes a mapping of metric name to value, e.g. "
                            f"{{'loss': 0.3}}; got {type(metrics).__name__}")
        row: dict[str, Any] = {}
        for key, value in metrics.items():
            if key not in self.pending:
                check_key(key)
            value = to_value(key, value)
            if type(value) is not float:
                self.has_device_values = True
            row[key] = value
        index = len(self.times)
        pending = self.pending
        for key, value in row.items():
            col = pending.get(key)
            if col is None:
                col = pending[key] = ([], [])
            col[0].append(index)
            col[1].append(value)

    def add_step(self, row: Mapping[str, Any], *, at: float | None = None) -> None:
        """One step that began at ``at`` (perf clock; now when None) with its values."""
        self.times.append(self._perf() if at is None else at)
        self.add(row)

    def add_steps(self, steps: Sequence[int], columns: Mapping[str, Sequence[float]], *,
                  weights: Mapping[str, Sequence[float]] | None = None) -> None:
        """Steps that ended since the last call, given by global step number (increasing,
        after :attr:`step`), every key with one value per step: fit's engine drains its window
        like this. Wall times are spread evenly since the previous step (the loop read no clock
        for them). ``weights`` (per key: batch sizes) weight the running means."""
        if not steps:
            return
        times = self.times
        now = self._perf()
        start = times[-1] if times else self._time_before
        last = steps[-1]
        first_new = self.step0 + len(times) + 1
        span = max(last - first_new + 1, 1)
        times.extend(start + (now - start) * (i + 1) / span for i in range(last - first_new + 1))
        idx = [s - self.step0 for s in steps]
        for key, values in columns.items():
            col = self.pending.get(key)
            if col is None:
                col = self.pending[key] = ([], [])
            col[0].extend(idx)
            col[1].extend(values)
            if weights is not None and key in weights:
                self.weights.setdefault(key, []).extend(weights[key])

    # -- refresh ---------------------------------------------------------------------------------
    def flush(self) -> list[str]:
        """Fold the window into the means, the CSV and the record; return the keys that had
        non-finite values in it."""
        pending, times = self.pending, self.times
        if not pending and not times:
            return []
        self.pending = {key: ([], []) for key in pending}  # known keys stay on the fast path
        pending = {key: col for key, col in pending.items() if col[0]}
        if self.reducer is not None and not pending and not times:
            return []  # under torchrun: a collective only for a window with something in it
        if self.has_device_values:
            read_tensor_slots((values, i) for _, values in pending.values()
                              for i in range(len(values)))
            self.has_device_values = False
        window = take_columns(pending, times, self.step0, self._time_before, self._to_wall)
        step_before = self.step0
        n = len(times)
        if n:
            if self.run is not None:
                self.run.advance(n)
            self.step0 += n
            self._time_before = times[-1]
            times.clear()  # the same list object: a running generator appends to it
        weights, self.weights = self.weights, {}
        if self.reducer is not None:  # under torchrun: one gather, the same values everywhere
            columns, uniform, weights = self.reducer.reduce(self, window, weights, step_before)
            window = Window(columns, uniform=uniform)
        if weights:
            bad = self.averages.add_columns(window.columns, weights=weights)
        else:
            bad = fold_window(window, self.averages, self.csv)
        columns = window.columns
        for key, (_, _, values) in columns.items():
            self.last[key] = values[-1]
        if self.run is not None and columns and not self.run.closed:
            self.run.log_columns(columns)
        if self.health is not None and columns:
            if bad:
                self._observe_first_nonfinite(columns, bad)
            means, peaks = {}, {}
            for key, (steps, _, values) in columns.items():
                if key not in bad:
                    means[key] = column_sum(values) / len(values)
                    top = max(range(len(values)), key=values.__getitem__)
                    peaks[key] = (int(steps[top]), float(values[top]))
            if means:
                self.health.observe_window(self.step0, means, peaks)
        if self.csv is not None:
            self.csv.flush()
        if bad and not self._warned_nonfinite:
            self._warn_nonfinite(columns, bad)
        return bad

    def _observe_first_nonfinite(self, columns: Mapping[str, Any], bad: list[str]) -> None:
        assert self.health is not None
        for key in dict.fromkeys(bad):
            steps, walls, values = columns[key]
            for step, wall, value in zip(steps, walls, values, strict=True):
                if not math.isfinite(value):
                    self.health.observe(key, int(step), value, time=wall)
                    break

    def _warn_nonfinite(self, columns: Mapping[str, Any], bad: list[str]) -> None:
        self._warned_nonfinite = True
        where = []
        for key in sorted(set(bad)):
            steps, _, values = columns[key]
            first = next(s for s, v in zip(steps, values, strict=True) if not math.isfinite(v))
            where.append(f"{key} at step {first}")
        msg = (f"non-finite value (NaN or inf) logged: {', '.join(where)}; recorded as such and "
               "counted (nonfinite_counts). This warning is shown once.")
        warnings.warn(msg, RuntimeWarning, stacklevel=user_stacklevel())
        if self.run is not None and not self.run.closed:
            self.run.log_event("nonfinite", msg, level="warning",
                               data={"keys": sorted(set(bad)), "where": where})

    # -- passes and state ------------------------------------------------------------------------
    def means(self) -> dict[str, float]:
        return self.averages.averages()

    def shown(self, stateful: frozenset[str] = frozenset()) -> dict[str, float]:
        """The pass's values as shown and summarised: each key's running mean, or its last
        value for a key shown last (the display rule, ``watch/display.py``)."""
        return shown_values(self.averages.averages(), self.last, stateful=stateful)

    def reset_means(self) -> None:
        """A new pass: the running means start again (the step continues)."""
        self.averages.reset()
        self.last.clear()

    def restart_at(self, step: int, *, epoch: int | None = None) -> None:
        """Continue counting from global step ``step`` (a resume), ``epoch`` epochs ended."""
        self.flush()
        self.step0 = step
        if self.run is not None:
            self.run.restore_step(step, epoch=epoch)

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {"step": self.step, "averages": self.averages.state_dict(),
                "epoch": None if self.run is None else self.run.epoch,
                "data_wait_s": self.stats.data_wait_s, "body_s": self.stats.body_s,
                "steps": self.stats.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "step" not in state or "averages" not in state:
            missing = "averages" if "step" in state else "step"
            raise KeyError(f"accumulator state is missing {missing!r}")
        self.restart_at(int(state["step"]), epoch=state.get("epoch"))
        self.averages.load_state_dict(state["averages"])
        self.stats.data_wait_s, self.stats.body_s, self.stats.steps = (
            float(state.get("data_wait_s", 0.0)), float(state.get("body_s", 0.0)),
            int(state.get("steps", 0)))
