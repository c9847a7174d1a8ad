"""TrainingMonitor: one line around a loop gives a bar, running averages, a CSV and a run record.

```python
monitor = TrainingMonitor(train_loader, desc="Training", log_file="train.csv")
for batch in monitor:
    loss = train_step(batch)
    monitor.log({"loss": loss})          # a float, an int, or a one-element tensor
```

``log()`` appends to the shared accumulator (``watch/accumulator.py``), which hands each
``mininterval`` window to the bar, the CSV and the run (a kill loses at most one window).

Runs (``docs/record.md``): with no ``run=``/``name=``, successive monitors join the active run
(``loopwise.record.active``) and continue its global step. A training pass ends an epoch
(``epoch/<name>``); a ``phase="val"`` pass adds ``epoch/val_<name>`` without advancing the step.
An exception or Ctrl-C closes the run as ``failed``/``interrupted``; a completed pass leaves it
open for the next monitor until ``close()``, ``end_active_run()`` or the process's exit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

from loopwise.distributed.group import train_group
from loopwise.record.active import monitor_run
from loopwise.record.opening import end_run
from loopwise.record.recorder import Recorder, check_exporters
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.utils.validate import check_optional_int, check_positive
from loopwise.watch.accumulator import LoopStats, StepAccumulator
from loopwise.watch.csvlog import CsvLog
from loopwise.watch.health.runner import ensure_health_monitor
from loopwise.watch.hostcopy import MediaLog
from loopwise.watch.metrics import format_postfix
from loopwise.watch.monitor_bar import monitor_bar
from loopwise.watch.system_run import ensure_system_monitor, start_rank_system

T = TypeVar("T")



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
        phase: str = "train",
        epoch_summary: bool = True,
        stateful_metrics: Sequence[str] = (),
        exporters: Sequence[Recorder] = (),
        file: Any = None,
        leave: bool = True,
        disable: bool = False,
        mininterval: float = 0.1,
        system: bool = True,
        health: bool = True,
        clock: Callable[[], float] = time.time,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        total = check_options(iterable, desc, total, mininterval, run, record, phase,
                              stateful_metrics, exporters, clock, perf)
        group = train_group(target_s=max(float(mininterval), 0.25))
        self._group = group  # under torchrun: the TrainGroup fit and Workflow use too
        if group is not None and not group.leader:  # torchrun: rank 0 shows and records
            record, run, log_file, disable, exporters = False, None, None, True, ()
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self._iterable = iterable
        self.total = total
        self.desc = desc
        self.phase = phase
        self._stateful = frozenset(stateful_metrics)
        self._epoch_summary = epoch_summary
        self._csv = CsvLog(log_file, flush_interval=mininterval) if log_file is not None else None
        self._own_run = run is None and record  # closes it on failure and on close()
        run = monitor_run(run, record=record, root=root, name=name, config=config,
                          phase=phase)
        self.run: Run | None = run
        for exporter in exporters if run is not None else ():
            run.add_exporter(exporter)  # type: ignore[union-attr]
        health_monitor = (ensure_health_monitor(run)
                          if health and run is not None and phase == "train" else None)
        self._acc = StepAccumulator(run if phase == "train" else None, csv=self._csv,
                                    health=health_monitor, clock=clock, perf=perf)
        self.log = self._acc.log  # type: ignore[method-assign]
        self._media = MediaLog(run, lambda: self._acc.step)
        if group is not None:  # torchrun: refresh on a step count, the same on every rank
            self._iterable = group.attach_monitor(self._acc, iterable, self._refresh,
                                                  train=phase == "train")
            if system and phase == "train":
                start_rank_system(group, self._acc.stats)
        self._perf = perf
        self._clock = clock
        self._mininterval = float(mininterval) if group is None else math.inf
        self._next_refresh = 0.0 if group is None else math.inf
        self._bar_n = 0
        self._start_step = self._pass_start = self._acc.step
        self._pass_t0 = 0.0
        self._in_with = False
        self._finished = False
        self._closed = False
        self._bar = monitor_bar(total, desc, file, leave=leave, disable=disable,
                                mininterval=mininterval)
        if system and run is not None and phase == "train" and group is None:
            ensure_system_monitor(run, loop_stats=self._acc.stats)

    # -- public ------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """The global step: batches done by this monitor and the earlier ones of its run."""
        return self._acc.step

    @property
    def stats(self) -> LoopStats:
        """Steps done, and the data-wait and body seconds as of the last refresh."""
        return self._acc.stats

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Log this step's values: floats, ints, NumPy scalars or one-element tensors (the
        instance's ``log`` is the accumulator's own, bound at construction: no extra call)."""
        self._acc.log(metrics)

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        """Record the distribution of ``values`` (a tensor on any device, an array) at ``step``
        (default: the global step); binned off this thread, no device sync."""
        self._media.log_histogram(name, values, step=step, bins=bins)

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        """Record an image: a PNG path or bytes, an HxWx{1,3,4} uint8 array or tensor, or a
        matplotlib figure."""
        self._media.log_image(name, image, step=step)

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        """Record a text entry at ``step`` (default: the global step)."""
        self._media.log_text(name, text, step=step)

    def averages(self) -> dict[str, float]:
        """The running averages of this pass now (reads pending device values: a sync)."""
        self._acc.flush()
        return self._acc.means()

    @property
    def nonfinite_counts(self) -> dict[str, int]:
        self._acc.flush()
        return dict(self._acc.averages.nonfinite)

    def close(self, status: str | None = None, *, error: str | None = None) -> None:
        """Flush everything; close the bar, the CSV and the monitor's run (the active run it
        made or joined; a run given with ``run=`` is left to its owner)."""
        if self._closed:
            return
        if self._group is not None and status not in (None, "finished"):
            error = self._group.on_failure(error)  # no collective after a failure
        try:
            self._finish_pass()
            self._acc.flush()
        finally:
            self._closed = self._acc.closed = True
            if self._csv is not None:
                self._csv.close()
            if self._own_run and self.run is not None:  # the one end of a run
                end_run(self.run, status=status or "finished", error=error)

    def __iter__(self) -> Iterator[T]:
        if self._closed:
            raise RuntimeError("this TrainingMonitor is closed; create one per epoch (they share "
                               "the active run) or pass run=")
        if self._finished:
            self._finished = self._acc.immediate = False
            self._acc.reset_means()
            self._bar.reset(total=self.total)
            self._bar_n = 0
        self._pass_start = self.step
        self._pass_t0 = self._perf()
        if self._group is None:  # the first refresh one mininterval in (the bar shows at once)
            self._next_refresh = self._pass_t0 + self._mininterval
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
        if status == "finished":
            self._finish_pass()
            self._acc.flush()  # a log() after the loop is recorded
            if self.run is not None and not self.run.closed:
                self.run.flush()
            return
        if status == "interrupted":
            self._event("interrupted", "interrupted by Ctrl-C", level="warning")
        self.close(status, error=error)

    def state_dict(self) -> dict[str, Any]:
        return self._acc.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._acc.load_state_dict(state)

    # -- internals ---------------------------------------------------------------------------
    def _iterate(self) -> Iterator[T]:
        # Per step: two clock reads, one append, two additions. Timings are summed in locals
        # and handed to the loop stats at each refresh and at the end.
        perf = self._perf
        mark = self._acc.times.append
        next_refresh = self._next_refresh
        wait = body = 0.0
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
                    self._add_times(wait, body)
                    wait = body = 0.0
                    self._refresh(t_end)
                    next_refresh = self._next_refresh
                    t_end = perf()  # the refresh is neither data wait nor loop body
        except GeneratorExit:
            self._add_times(wait, body)
            reducer, self._acc.reducer = self._acc.reducer, None  # torchrun: no exchange here
            self._finish_pass()  # break, or an exception in the loop body: see module doc
            self._acc.reducer = reducer  # (a rank may be leaving on an exception)
            raise
        except KeyboardInterrupt:
            self._add_times(wait, body)
            self._event("interrupted", "interrupted by Ctrl-C", level="warning")
            self.close("interrupted")
            raise
        except Exception as exc:
            self._add_times(wait, body)
            status, error = exit_status(type(exc), exc, exc.__traceback__)
            self.close(status, error=error)
            raise
        self._add_times(wait, body)
        self._finish_pass()

    def _add_times(self, wait: float, body: float) -> None:
        stats = self._acc.stats
        stats.steps = self.step - self._start_step
        stats.data_wait_s += wait
        stats.body_s += body

    def _postfix(self) -> str:
        acc = self._acc
        text = format_postfix(acc.shown(self._stateful))
        stats = acc.stats
        total = stats.data_wait_s + stats.body_s
        if total > 0:
            share = f"wait={100.0 * stats.data_wait_s / total:.0f}%"
            text = f"{text}, {share}" if text else share
        return text

    def _refresh(self, now: float) -> None:
        self._next_refresh = now + self._mininterval
        self._acc.flush()
        bar = self._bar
        bar.set_postfix_str(self._postfix(), refresh=False)
        done = self.step - self._pass_start
        bar.update(done - self._bar_n)
        self._bar_n = done

    def _finish_pass(self) -> None:
        if self._finished:
            return
        self._finished = self._acc.immediate = True
        self._refresh(self._perf())
        self._bar.close()
        if self._csv is not None:
            self._csv.close()  # its file is not left open between passes (reopened by the next)
        run = self.run
        if run is None or run.closed:
            return
        steps = self.step - self._pass_start
        values = self._acc.shown(self._stateful)
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        self._event("pass_end", f"{self.desc or self.phase}: {steps} steps",
                    data={"step": run.global_step, "phase": self.phase, "averages": finite})
        if self._epoch_summary and (steps or values):
            if self.phase == "train":
                epoch_values = dict(values, seconds=self._perf() - self._pass_t0)
                run.log_epoch(run.epoch + 1, epoch_values, step=run.global_step)
            else:
                named = {(k if k.startswith("val_") else f"val_{k}"): v
                         for k, v in values.items()}
                run.log_epoch(max(run.epoch, 1), named, step=run.global_step)
        run.flush(wait=False)  # the store's thread writes it (within its flush_interval)

    def _event(self, kind: str, message: str, *, level: str = "info",
               data: Mapping[str, Any] | None = None) -> None:
        if self.run is not None and not self.run.closed:
            self.run.log_event(kind, message, level=level, data=data)


# --- argument checks (TrainingMonitor's, each with a message that says what to do) -----------
PHASES = ("train", "val")


def check_options(iterable: Any, desc: Any, total: Any, mininterval: Any, run: Any,
                   record: Any, phase: Any, stateful: Any, exporters: Any, clock: Any,
                   perf: Any) -> int | None:
    """Refuse bad arguments; ``total`` comes back checked (an int or None)."""
    if isinstance(iterable, (str, bytes)) or not hasattr(iterable, "__iter__"):
        raise TypeError(
            f"TrainingMonitor needs an iterable (a DataLoader, list, generator...), got "
            f"{type(iterable).__name__}; pass the loader itself, e.g. TrainingMonitor(loader)"
        )
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a string, got {type(desc).__name__}")
    checked = check_optional_int(total, what="total", minimum=0,
                                 hint="steps in the loop; None: the loader's len()")
    check_positive(mininterval, what="mininterval", hint="seconds between refreshes")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
    if run is not None and run.closed:
        raise ValueError(f"run {run.name!r} is already closed; pass an open run")
    if run is not None and not record:
        raise ValueError("run= was given with record=False; pass one or the other")
    if phase not in PHASES:
        raise ValueError(f"phase must be 'train' or 'val', got {phase!r}")
    if isinstance(stateful, str) or not all(isinstance(k, str) for k in stateful):
        raise TypeError("stateful_metrics must be a list of metric names, e.g. ['lr']")
    check_exporters(exporters)
    for what, fn in (("clock", clock), ("perf", perf)):
        if not callable(fn):
            raise TypeError(f"{what} must be a callable returning seconds, got {fn!r}")
    return checked
