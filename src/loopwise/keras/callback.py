"""``LoopwiseCallback``: loopwise's bar, epoch summaries, run record, system sampler, health
events, checkpoints and exporters for Keras 3 ``model.fit`` (``pip install 'loopwise[keras]'``).

```python
from loopwise.keras import LoopwiseCallback

callback = LoopwiseCallback(checkpoint_dir="ckpt", resume=True, config={"lr": 1e-3})
model.fit(x, y, epochs=10, verbose=0, callbacks=[callback])
```

Batch logs become per-step series at the run's global step (``keras_logs``), epoch logs
``epoch/<name>`` (``run.log_epoch``). ``async_safe``: Keras keeps dispatching the batch hook on
its callback thread (torch, JAX; TensorFlow calls callbacks inline). See ``docs/keras.md``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.backend import require
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.keras import run as keras_run
from loopwise.keras import state as keras_state
from loopwise.keras.logs import BatchLogs
from loopwise.record.opening import end_run
from loopwise.record.reader import RunReader
from loopwise.record.recorder import Recorder, check_exporters
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.utils.validate import check_bool, check_int, check_positive
from loopwise.watch.accumulator import LoopStats
from loopwise.watch.epoch_summary import EpochResult, render_epoch_summary
from loopwise.watch.health.runner import HealthMonitor, ensure_health_monitor
from loopwise.watch.progress import ProgressBar
from loopwise.watch.system_run import ensure_system_monitor

try:
    import keras
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("loopwise.keras needs Keras 3: pip install 'loopwise[keras]'") from exc
require("keras")

__all__ = ["LoopwiseCallback"]


class LoopwiseCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """A Keras callback recording ``model.fit`` into a loopwise run; see the module doc.

    ``run``: the run to write to (never closed by the callback); else one is made under
    ``root``/``name`` at the start of ``fit`` and closed at its end. ``config`` is added to the
    fit parameters (epochs, steps, verbose, backend) in ``config.json``. ``checkpoint_dir``
    saves a checkpoint every ``save_every`` epochs (and after the last) through
    ``CheckpointManager`` (``monitor``, ``mode``, ``keep_last``, ``keep_best``); with
    ``resume=True`` the newest one is loaded at the start of ``fit`` (weights, optimizer, RNG
    states, epoch: ``fit`` continues at the next epoch, into the same run). ``exporters`` mirror
    the run. ``progress`` draws the bar and the epoch summaries on ``file`` (default stderr);
    pass ``verbose=0`` to ``fit`` so Keras does not draw its own. ``async_safe``: True lets
    Keras call the batch hooks on its callback thread, False inline; None (the default) is
    True when the backend has an accelerator, False on a CPU-only machine (see
    ``docs/keras.md``: inline is faster there).
    """

    async_safe = True  # on_train_batch_end only appends under a lock (keras_logs.BatchLogs)

    def __init__(self, *, run: Run | None = None, root: str | os.PathLike[str] = "runs",
                 name: str | None = None, config: Mapping[str, Any] | None = None,
                 checkpoint_dir: str | os.PathLike[str] | None = None, resume: bool = False,
                 monitor: str | None = None, mode: str = "auto", keep_last: int = 3,
                 keep_best: int = 1, save_every: int = 1, exporters: Iterable[Recorder] = (),
                 progress: bool = True, file: TextIO | None = None, system: bool = True,
                 health: bool = True, flush_interval: float = 1.0,
                 async_safe: bool | None = None) -> None:
        super().__init__()
        if run is not None and not isinstance(run, Run):
            raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (where the checkpoints are)")
        save_every = check_int(save_every, what="save_every", minimum=1, hint="epochs")
        for flag, value in (("resume", resume), ("progress", progress), ("system", system),
                            ("health", health)):
            check_bool(value, what=flag)
        if async_safe is not None:
            check_bool(async_safe, what="async_safe")
        check_positive(flush_interval, what="flush_interval", hint="seconds")
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
        # False: Keras calls every batch hook inline; None: asynchronous on an accelerator
        # only (where it hides Keras's per-batch device read; on the CPU the thread pool's
        # GIL handoffs cost more: bench/entry_points.py, docs/keras.md)
        self.async_safe = keras_run.has_accelerator() if async_safe is None else async_safe
        self._exporters = check_exporters(exporters)
        self._checkpoints = None if checkpoint_dir is None else CheckpointManager(
            checkpoint_dir, monitor=monitor, mode=mode, keep_last=keep_last, keep_best=keep_best)
        self._given_run, self._root, self._name = run, root, name
        self._config, self._resume, self._save_every = dict(config or {}), resume, save_every
        self._progress, self._file = progress, file
        self._system, self._health_on, self._interval = system, health, float(flush_interval)
        self.run: Run | None = run
        self._health: HealthMonitor | None = None
        self._logs = BatchLogs()
        self._bar: ProgressBar | None = None
        self._means: set[str] | None = None
        self._epoch_base = self._start_step = 0
        self._epoch_start = self._next_flush = 0.0
        self._set_initial_epoch = self._warned_verbose = False
        self.initial_epoch = self.epoch = 0  # fit's first epoch (after a resume); epochs done

    # -- the fit hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        params = dict(self.params or {})
        if params.get("verbose", 0) != 0 and self._progress and not self._warned_verbose:
            self._warned_verbose = True
            warnings.warn("model.fit(verbose=...) draws Keras's own progress bar beside "
                          "loopwise's, and its per-batch logger stops Keras's asynchronous "
                          "callback dispatch; pass verbose=0 to fit", UserWarning, stacklevel=2)
        state = self._checkpoints.load_latest() if self._resume and self._checkpoints else None
        run = self._open_run(params, state)
        if self._checkpoints is not None:
            self._checkpoints.run = run
        if state is not None:
            keras_state.restore(self.model, state["keras"])
            self.initial_epoch = self.epoch = int(state["epoch"])
            self.model._initial_epoch = self.initial_epoch  # as keras.callbacks.BackupAndRestore
            self._set_initial_epoch = True
            run.restore_step(int(state["global_step"]))
            run.log_event("checkpoint_loaded", f"resumed from epoch {self.epoch}, step "
                          f"{run.global_step}", data={"epoch": self.epoch,
                                                      "step": run.global_step})
        self._start_step = run.global_step
        self._means = None
        if self._health_on:
            self._health = ensure_health_monitor(run)
        if self._system:
            ensure_system_monitor(run, loop_stats=self)
        keras_run.summary_event(run, self.model)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        run = self._need_run()
        self._logs.new_epoch()
        self._epoch_base = run.global_step
        self._epoch_start = time.monotonic()
        self._next_flush = self._epoch_start + self._interval
        lr = keras_run.read_lr(self.model)
        if lr is not None:
            run.log_scalars({"lr": lr}, step=self._epoch_base + 1)
        steps, epochs = (self.params or {}).get("steps"), (self.params or {}).get("epochs")
        if self._progress and isinstance(steps, int) and steps > 0:
            self._bar = ProgressBar(f"Epoch {epoch + 1}/{epochs} (Training)", steps,
                                    file=self._file)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # May run on Keras's callback thread, several at once: append, advance, draw.
        logs = {} if logs is None else logs
        self._logs.add(batch, time.time(), logs, advance=self._advance)
        bar = self._bar
        if bar is not None:
            bar.update(batch + 1 if bar.total is None else min(batch + 1, bar.total), logs)
        if time.monotonic() >= self._next_flush:
            self._flush()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        run = self._need_run()
        self._flush(final=True)  # Keras waited for every batch hook of the epoch before this
        if self._bar is not None:
            self._bar.finish()
            self._bar = None
        values = {k: float(v) for k, v in (logs or {}).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        lr = values.pop("learning_rate", None)
        lr = keras_run.read_lr(self.model) if lr is None else lr
        shown = dict(values)
        if lr is not None:
            values["lr"] = lr
        values["seconds"] = time.monotonic() - self._epoch_start
        self.epoch = epoch + 1
        run.log_epoch(self.epoch, values, step=run.global_step)
        train = {k: v for k, v in shown.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in shown.items() if k.startswith("val_")} or None
        if self._health is not None:
            feed = {f"train_{k}": v for k, v in train.items()}
            feed.update({f"val_{k}": v for k, v in (val or {}).items()})
            self._health.observe_epoch(self.epoch, feed)
        epochs = int((self.params or {}).get("epochs") or self.epoch)
        result = EpochResult(self.epoch, train, val, train_steps=self._logs.batches_done)
        run.log_event("epoch_end", render_epoch_summary(result, epochs).replace("\n", "; "),
                      data={"epoch": self.epoch, "step": run.global_step})
        if self._progress:
            tqdm.write("\n" + render_epoch_summary(result, epochs) + "\n",
                       file=self._file or sys.stderr)
        if self._checkpoints is not None and (self.epoch % self._save_every == 0
                                              or self.epoch == epochs):
            state = {"keras": keras_state.capture(self.model), "epoch": self.epoch,
                     "global_step": run.global_step, "run": str(run.path)}
            run.flush()  # the record holds everything the checkpoint does
            path = self._checkpoints.save(state, step=run.global_step, metrics=values)
            run.log_event("checkpoint_saved", f"epoch {self.epoch}: {path.name}", data={
                "file": path.name, "epoch": self.epoch, "step": run.global_step})

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._flush(final=True)
        if self._bar is not None:
            self._bar.finish()
            self._bar = None
        if self._set_initial_epoch:
            self.model._initial_epoch = None  # a later fit() starts where it is told
            self._set_initial_epoch = False
        self.close("finished")

    # -- closing, state, loop statistics ---------------------------------------------------------
    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Close the run the callback made with ``status`` (a given run is only flushed).
        ``fit`` calls this at its end; after an exception Keras calls no hook: use
        ``with LoopwiseCallback(...) as cb:`` or the run is closed at interpreter exit."""
        if self._checkpoints is not None:
            self._checkpoints.close()
        if self.run is not None:  # the one end of a run (a given run: flushed)
            end_run(self.run, status=status, error=error, own=self.run is not self._given_run)

    def __enter__(self) -> LoopwiseCallback:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        if status == "interrupted" and self.run is not None and not self.run.closed:
            self.run.log_event("interrupted", "interrupted by Ctrl-C", level="warning")
        self.close(status, error=error)

    @property
    def stats(self) -> LoopStats:
        """Steps done in this fit (the system sampler's steps/s); Keras reports no data wait."""
        run = self.run
        return LoopStats(0 if run is None else run.global_step - self._start_step, 0.0, 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "global_step": self.run.global_step if self.run else 0}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "epoch" not in state:
            raise KeyError("LoopwiseCallback state is missing 'epoch'")
        self.epoch = self.initial_epoch = int(state["epoch"])
        if self.run is not None and "global_step" in state:
            self.run.restore_step(int(state["global_step"]))

    # -- internals -----------------------------------------------------------------------------
    def _open_run(self, params: Mapping[str, Any], state: Mapping[str, Any] | None) -> Run:
        config = keras_run.fit_config(params, self.model, self._config)
        run = self.run
        if run is None or run.closed:
            if self._given_run is not None:
                raise ValueError(f"run {self._given_run.name!r} is closed; pass an open run")
            run = self.run = keras_run.resumed_or_new_run(
                state, self._root, self._name, config, resume=self._resume)
        if self._given_run is not None or state is not None:
            run.set_config({**RunReader(run.path).config(), **config})
        for exporter in self._exporters:
            if exporter not in run.exporters:
                run.add_exporter(exporter)
        return run

    def _need_run(self) -> Run:
        if self.run is None or self.run.closed:
            raise RuntimeError("LoopwiseCallback has no open run: pass it to model.fit(..., "
                               "callbacks=[callback]) so that on_train_begin runs first")
        return self.run

    def _advance(self, steps: int) -> None:
        if self.run is not None:
            self.run.advance(steps)

    def _is_mean(self, key: str) -> bool:
        if self._means is None:  # Keras builds the compiled metrics at the first step
            self._means = keras_run.mean_metric_names(self.model)
        return key in self._means

    def _flush(self, *, final: bool = False) -> None:
        run = self.run
        self._next_flush = time.monotonic() + self._interval
        if run is None or run.closed:
            return
        columns = self._logs.take(base_step=self._epoch_base, is_mean=self._is_mean, final=final)
        if not columns:
            return
        run.log_columns(columns)
        if self._health is not None:  # one mean per metric per hand-over, as TrainingMonitor
            step = max(c[0][-1] for c in columns.values())
            self._health.observe_many(step, {k: sum(c[2]) / len(c[2])
                                             for k, c in columns.items()})
