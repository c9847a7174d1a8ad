"""TrainingMonitor: one line around a loop gives a bar, running averages, a CSV and a run record.

```python
monitor = TrainingMonitor(train_loader, desc="Training", log_file="train.csv")
for batch in monitor:
    loss = train_step(batch)
    monitor.log({"loss": loss})          # a float, an int, or a 0-dim tensor
```

The step path is kept to a few hundred nanoseconds: ``log()`` checks each value's type and
appends it to its key's column (``watch/window.py``). Every ``mininterval`` seconds (and at the
end) the pending values are folded into the running averages, the bar's postfix, the CSV and
the run record. CPU tensors are read
with ``.item()`` at ``log()`` (cheap there); CUDA tensors are kept on the device and read in one
batch per refresh, so the loop never waits for the GPU because of logging.

Closing: a loop that runs to its end closes everything; inside ``with TrainingMonitor(...)`` the
run closes at the end of the block (``failed`` with the traceback on an exception,
``interrupted`` on Ctrl-C). Python does not tell an iterator why a ``for`` loop stopped early, so
after a ``break`` or an exception in plain iteration the monitor's own run stays open until
``close()`` or interpreter exit, where it is closed as ``failed``/``interrupted``/``finished``
according to how the process ended. Use ``with`` when the status must be exact at once.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import torch
from tqdm.auto import tqdm

from loopwise.record.run import Run, exit_status
from loopwise.record.validate import check_key, check_number
from loopwise.watch.csvlog import CsvLog
from loopwise.watch.fold import LoopStats, fold_window, read_tensor_slots
from loopwise.watch.health.runner import HealthMonitor, ensure_health_monitor
from loopwise.watch.metrics import RunningAverages, column_sum, format_postfix
from loopwise.watch.system import ensure_system_monitor
from loopwise.watch.window import PendingColumn, take_columns

T = TypeVar("T")
_INT_MAX = 1e308  # an int at least this big may not fit a float64: checked on the slow path


class TrainingMonitor(Generic[T]):
    """Wrap any iterable with a progress bar, running averages, a CSV log and a run record."""

    def __init__(
        self,
        iterable: Iterable[T],
        desc: str | None = None,
        *,
        total: int | None = None,
        log_file: str | os.PathLike[str] | None = None,
        run: Run | None = None,
        record: bool = True,
        root: str | os.PathLike[str] = "runs",
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        file: Any = None,
        leave: bool = True,
        disable: bool = False,
        mininterval: float = 0.1,
        system: bool = True,
        health: bool = True,
    ) -> None:
        if isinstance(iterable, (str, bytes)) or not hasattr(iterable, "__iter__"):
            raise TypeError(
                f"TrainingMonitor needs an iterable (a DataLoader, list, generator...), got "
                f"{type(iterable).__name__}; pass the loader itself, e.g. TrainingMonitor(loader)"
            )
        if desc is not None and not isinstance(desc, str):
            raise TypeError(f"desc must be a string, got {type(desc).__name__}")
        if total is not None and (type(total) is not int or total < 0):
            raise ValueError(f"total must be a non-negative int, got {total!r}")
        if not (isinstance(mininterval, (int, float)) and mininterval > 0):
            raise ValueError(f"mininterval must be > 0 seconds, got {mininterval!r}")
        if run is not None and not isinstance(run, Run):
            raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
        if run is not None and run.closed:
            raise ValueError(f"run {run.name!r} is already closed; pass an open run")
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self._iterable = iterable
        self.total = total
        self.desc = desc
        self._csv = CsvLog(log_file) if log_file is not None else None
        self._own_run = run is None and record
        if run is None and record:
            run = Run.create(root, name, config=config)
        elif run is not None and config is not None:
            run.set_config(config)
        self.run: Run | None = run
        self._averages = RunningAverages()
        # The refresh window (watch/window.py): each step's start time (perf clock), each
        # key's (step index, value) columns, the global step before the window and its time.
        self._times: list[float] = []
        self._pending: dict[str, PendingColumn] = {}
        self._has_device_values = False
        self._to_wall = time.time() - time.perf_counter()
        self._time_before = time.perf_counter()
        self._warned_nonfinite = False
        self._start_step = run.global_step if run is not None else 0
        self._step0 = self._start_step
        self._wait = 0.0
        self._body = 0.0
        self._mininterval = float(mininterval)
        self._next_refresh = 0.0
        self._bar_n = 0
        self._pass_start = self._start_step
        self._in_with = False
        self._finished = False
        self._closed = False
        stream = sys.stderr if file is None else file
        is_tty = bool(getattr(stream, "isatty", lambda: False)())
        # Off a terminal (CI logs, files) redraw at most every 5 s: no carriage-return spam.
        self._bar = tqdm(total=total, desc=desc, file=file, leave=leave, disable=disable,
                         mininterval=mininterval if is_tty else max(mininterval, 5.0),
                         dynamic_ncols=is_tty)
        self._health: HealthMonitor | None = None
        if health and run is not None:
            self._health = ensure_health_monitor(run)
        if system and run is not None:
            ensure_system_monitor(run, loop_stats=self)

    # -- public ------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """The global step: batches done by this monitor and the earlier ones of its run."""
        return self._step0 + len(self._times)

    @property
    def stats(self) -> LoopStats:
        """Steps done, and the data-wait and body seconds as of the last refresh."""
        return LoopStats(self.step - self._start_step, self._wait, self._body)

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Log this step's values: floats, ints, NumPy scalars or 0-dim tensors."""
        # The step path: plain floats/ints under known keys go straight into their column
        # (watch/window.py). Anything else (a new key, a tensor, a NumPy scalar, a Mapping
        # that is not a dict) is undone and takes _log_checked: a log() is all or nothing.
        if type(metrics) is dict and not self._closed:
            pending = self._pending
            index = len(self._times)
            for key, value in metrics.items():
                if type(value) is float or (type(value) is int and -_INT_MAX < value < _INT_MAX):
                    col = pending.get(key)
                    if col is not None:
                        col[0].append(index)
                        col[1].append(value)
                        continue
                self._undo(metrics, key)
                return self._log_checked(metrics)
            return None
        return self._log_checked(metrics)

    def _undo(self, metrics: Mapping[str, Any], stop: str) -> None:
        for key in metrics:
            if key == stop:
                return
            col = self._pending[key]
            col[0].pop()
            col[1].pop()

    def _log_checked(self, metrics: Mapping[str, Any]) -> None:
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"log() takes a mapping of metric name to value, e.g. {{'loss': 0.3}}; got "
                f"{type(metrics).__name__}"
            )
        if self._closed:
            raise RuntimeError("this TrainingMonitor is closed; log() before close(), or pass "
                               "run= to a new monitor to keep logging to the same run")
        row: dict[str, Any] = {}
        for key, value in metrics.items():  # all checked before anything is kept
            if key not in self._pending:
                check_key(key)
            if type(value) is not float:  # ints too: one beyond float64 is refused here
                value = self._convert(key, value)
            row[key] = value
        index = len(self._times)
        for key, value in row.items():
            col = self._pending.get(key)
            if col is None:
                col = self._pending[key] = ([], [])
            col[0].append(index)
            col[1].append(value)

    def averages(self) -> dict[str, float]:
        """The running averages now (reads pending CUDA values: a device sync)."""
        self._process()
        return self._averages.averages()

    @property
    def nonfinite_counts(self) -> dict[str, int]:
        self._process()
        return dict(self._averages.nonfinite)

    def close(self, status: str | None = None, *, error: str | None = None) -> None:
        """Flush everything; close the bar, the CSV and (when the monitor made it) the run."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finish_pass()
        finally:
            if self._csv is not None:
                self._csv.close()
            if self._own_run and self.run is not None:
                self.run.close(status or "finished", error=error)

    def __iter__(self) -> Iterator[T]:
        if self._closed:
            raise RuntimeError("this TrainingMonitor is closed; create one per epoch and share a "
                               "run with run=")
        if self._finished:
            self._finished = False
            self._averages.reset()
            self._bar.reset(total=self.total)
            self._bar_n = 0
        self._pass_start = self.step
        return self._iterate()

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError(f"the iterable ({type(self._iterable).__name__}) has no len()")
        return self.total

    def __enter__(self) -> TrainingMonitor[T]:
        self._in_with = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        if status == "interrupted":
            self._event("interrupted", "interrupted by Ctrl-C", level="warning")
        self.close(status, error=error)

    def state_dict(self) -> dict[str, Any]:
        self._process()
        return {"step": self.step, "start_step": self._start_step,
                "averages": self._averages.state_dict(), "data_wait_s": self._wait,
                "body_s": self._body}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("step", "averages"):
            if key not in state:
                raise KeyError(f"TrainingMonitor state is missing {key!r}")
        self._process()  # what was logged so far is recorded under the old step numbers
        self._step0 = int(state["step"])
        self._start_step = int(state.get("start_step", self._step0))
        self._averages.load_state_dict(state["averages"])
        self._wait = float(state.get("data_wait_s", 0.0))
        self._body = float(state.get("body_s", 0.0))
        if self.run is not None:
            self.run.restore_step(self._step0)

    # -- internals ---------------------------------------------------------------------------
    def _iterate(self) -> Iterator[T]:
        # Per step: two clock reads, one append, two additions. Timings are summed in locals
        # and handed to the monitor at each refresh and at the end.
        perf = time.perf_counter
        mark = self._times.append
        next_refresh = self._next_refresh
        wait = body = 0.0
        completed = False
        try:
            t_end = perf()
            for batch in self._iterable:
                t_got = perf()
                mark(t_got)
                wait += t_got - t_end
                yield batch
                t_end = perf()
                body += t_end - t_got
                if t_end >= next_refresh:
                    self._wait += wait
                    self._body += body
                    wait = body = 0.0
                    self._refresh(t_end)
                    next_refresh = self._next_refresh
                    t_end = perf()  # the refresh is neither data wait nor loop body
            completed = True
        except GeneratorExit:
            self._add_times(wait, body)
            self._finish_pass()  # break, or an exception in the loop body: see module doc
            raise
        except KeyboardInterrupt:
            self._add_times(wait, body)
            self._event("interrupted", "interrupted by Ctrl-C", level="warning")
            self.close("interrupted")
            raise
        except Exception as exc:
            self._add_times(wait, body)
            text = "".join(traceback.format_exception(exc))
            self.close("failed", error=text)
            raise
        self._add_times(wait, body)
        if completed:
            if self._in_with:
                self._finish_pass()
            else:
                self.close("finished")

    def _add_times(self, wait: float, body: float) -> None:
        self._wait += wait
        self._body += body

    def _convert(self, key: str, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if value.dim() != 0:
                raise ValueError(
                    f"metric {key!r} is a tensor of shape {tuple(value.shape)}; log a 0-dim "
                    "tensor (e.g. loss.mean()) or a number"
                )
            if value.is_complex() or value.dtype == torch.bool:
                raise TypeError(f"metric {key!r} is a {value.dtype} tensor; log a real number")
            if value.device.type == "cpu":
                return value.item()
            self._has_device_values = True
            return value.detach()
        return check_number(value, what=f"metric {key!r}")

    def _process(self) -> dict[str, float]:
        """Fold the window into averages, the record and the CSV; return the averages."""
        pending, times = self._pending, self._times
        bad: list[str] = []
        if pending or times:
            # Keys stay known (with empty columns) so that the next window's log() is fast.
            self._pending = {key: ([], []) for key in pending}
            pending = {key: col for key, col in pending.items() if col[0]}
            if self._has_device_values:
                read_tensor_slots((values, i) for _, values in pending.values()
                                  for i in range(len(values)))
                self._has_device_values = False
            window = take_columns(pending, times, self._step0, self._time_before,
                                  self._to_wall)
            if times:
                self._step0 += len(times)
                self._time_before = times[-1]
                times.clear()  # the same list: the running generator appends to it
            bad = fold_window(window, self._averages, self._csv)
            columns = window.columns
            if self.run is not None and columns:
                self.run.log_columns(columns)
            if self._health is not None and columns:  # one observation per refresh window
                means = {k: column_sum(c[2]) / len(c[2]) for k, c in columns.items()}
                self._health.observe_many(self._step0, means)
        if self.run is not None:
            self.run.restore_step(self._step0)
        if bad and not self._warned_nonfinite:
            self._warn_nonfinite(bad)
        if self._csv is not None:
            self._csv.maybe_flush()
        return self._averages.averages()

    def _warn_nonfinite(self, keys: list[str]) -> None:
        self._warned_nonfinite = True
        names = ", ".join(sorted(set(keys)))
        msg = (f"non-finite values (NaN or inf) logged for {names}; they are recorded as such "
               "and counted (TrainingMonitor.nonfinite_counts). This warning is shown once.")
        warnings.warn(msg, RuntimeWarning, stacklevel=5)
        self._event("nonfinite", msg, level="warning", data={"keys": sorted(set(keys))})

    def _postfix(self, averages: dict[str, float]) -> str:
        text = format_postfix(averages)
        total = self._wait + self._body
        if total > 0:
            share = f"wait={100.0 * self._wait / total:.0f}%"
            text = f"{text}, {share}" if text else share
        return text

    def _refresh(self, now: float) -> None:
        self._next_refresh = now + self._mininterval
        averages = self._process()
        bar = self._bar
        bar.set_postfix_str(self._postfix(averages), refresh=False)
        done = self.step - self._pass_start
        bar.update(done - self._bar_n)
        self._bar_n = done

    def _finish_pass(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._refresh(time.perf_counter())
        self._bar.close()
        if self._csv is not None:
            self._csv.flush()
        if self.run is not None and not self.run.closed:
            averages = self._averages.averages()
            finite = {k: v for k, v in averages.items() if math.isfinite(v)}
            self._event("pass_end", f"{self.desc or 'loop'}: {self.stats.steps} steps",
                        data={"step": self.step, "averages": finite})
            self.run.flush()

    def _event(self, kind: str, message: str, *, level: str = "info",
               data: Mapping[str, Any] | None = None) -> None:
        if self.run is not None and not self.run.closed:
            self.run.log_event(kind, message, level=level, data=data)
