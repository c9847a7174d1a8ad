"""``Workflow``: create or resume an experiment folder and run a ``Trainer`` epoch by epoch.

Each epoch: ``on_epoch_begin``; time ``train_loop()``; save ``last_checkpoint.pth`` (full
state, phase ``trained``) and ``last_weights.pt``; time ``evaluate()``; rewrite ``history.csv``;
``on_evaluate`` and ``on_epoch_end`` (a callback may ask to stop); save to the optional
``CheckpointManager`` with the epoch's metrics. A resume restores everything the checkpoint
holds and continues where it was: a ``trained`` checkpoint re-runs that epoch's evaluation
(same RNG state, so the same numbers), an ``in_epoch`` one (``checkpoint_every``) continues
the pass at the next batch. See ``docs/workflow.md``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loopwise.record.names import validate_run_name
from loopwise.record.run import Run
from loopwise.train.callbacks.base import Callback, CallbackList, LoopState, StopRequest
from loopwise.train.checkpoint import CheckpointManager
from loopwise.train.checkpoint_store import CheckpointError, CorruptCheckpointError
from loopwise.train.experiment import (
    TIMING_COLUMNS,
    CheckpointFiles,
    History,
    args_diff,
    check_writable,
    normalize_args,
    read_args,
    write_args,
)
from loopwise.train.resume import (
    LoopPosition,
    ResumableLoader,
    ResumeError,
    capture_rng_state,
    find_resumable_sampler,
    restore_component,
    restore_rng_state,
    world_size,
)
from loopwise.train.trainer import Trainer
from loopwise.watch.monitor import TrainingMonitor

_log = logging.getLogger(__name__)
_FORMAT = "loopwise.workflow"
_REQUIRED = ("format", "epoch", "phase", "global_step", "model", "optimizer", "scheduler",
             "scaler", "rng", "callbacks", "monitor", "loop", "train_metrics", "train_seconds",
             "world_size")


@dataclass
class WorkflowResult:
    """What ``Workflow.run()`` did. ``status``: ``finished`` (all epochs), ``stopped`` (a
    callback asked), or ``already_finished`` (nothing to do)."""

    path: Path
    status: str
    epochs_done: int
    stop: StopRequest | None = None
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _Resume:
    epoch: int
    phase: str
    train_metrics: dict[str, float]
    train_seconds: float
    rng: dict[str, Any]
    loop: tuple[LoopPosition, dict[str, Any]] | None
    monitor: dict[str, Any] | None
    epoch_rng: dict[str, Any] | None


def _clean_metrics(result: object, where: str) -> dict[str, float]:
    if not isinstance(result, Mapping):
        raise TypeError(f"{where} must return a dict of metric name -> number, e.g. "
                        f"{{'train_loss': 0.3}}; it returned {type(result).__name__}")
    clean: dict[str, float] = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key or key == "epoch" or key in TIMING_COLUMNS:
            raise ValueError(f"{where} returned the metric name {key!r}; use non-empty names "
                             f"other than 'epoch', {', '.join(TIMING_COLUMNS)}")
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                import numpy as np

                if isinstance(value, np.generic) and np.isreal(value):
                    clean[key] = float(value)
                    continue
            except ImportError:  # pragma: no cover - numpy is a dependency
                pass
            raise TypeError(f"{where} returned {key!r} = {value!r:.60} "
                            f"({type(value).__name__}); metric values must be numbers")
        clean[key] = float(value)
    return clean


class Workflow:
    """Run ``trainer`` for ``epochs`` epochs in the experiment folder ``path/name``.

    ``callbacks``: :class:`~loopwise.callbacks.Callback` objects. ``checkpoint``: an optional
    :class:`~loopwise.CheckpointManager` that also keeps the last/best epoch checkpoints.
    ``checkpoint_every``: save mid-epoch every N batches of the first loader that
    ``train_loop`` iterates through ``self.track(...)`` (its sampler must be a
    ``ResumableSampler``). ``override_args``: resume even though ``trainer.args`` differ from
    the saved ``args.json`` (the difference is recorded). ``system``: start the run's system
    sampler.
    """

    def __init__(self, trainer: Trainer, path: str | os.PathLike[str], epochs: int,
                 name: str | None = None, *, callbacks: Iterable[Callback] = (),
                 checkpoint: CheckpointManager | None = None,
                 checkpoint_every: int | None = None, override_args: bool = False,
                 system: bool = True) -> None:
        if not isinstance(trainer, Trainer):
            raise TypeError(f"trainer must be a loopwise Trainer subclass instance, got "
                            f"{type(trainer).__name__}")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a folder path, got {type(path).__name__}")
        if type(epochs) is not int or epochs <= 0:
            raise ValueError(f"epochs must be a positive int (the number of epochs to train), "
                             f"got {epochs!r}")
        if name is not None:
            validate_run_name(name, what="experiment name")
        if checkpoint is not None and not isinstance(checkpoint, CheckpointManager):
            raise TypeError(f"checkpoint must be a loopwise CheckpointManager, got "
                            f"{type(checkpoint).__name__}")
        if checkpoint_every is not None and (type(checkpoint_every) is not int
                                             or checkpoint_every <= 0):
            raise ValueError(f"checkpoint_every must be an int >= 1 (batches), "
                             f"got {checkpoint_every!r}")
        self.trainer = trainer
        self.path = Path(path)
        self.epochs = epochs
        self.name = name
        self.callbacks = CallbackList(callbacks)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.override_args = bool(override_args)
        self.system = bool(system)
        self.folder: Path | None = None
        self._run: Run | None = None
        self._files: CheckpointFiles | None = None
        self._history: History | None = None
        self._epoch = 0
        self._phase: str | None = None
        self._epoch_t0 = 0.0
        self._train_tracked = False
        self._train_monitor: TrainingMonitor[Any] | None = None
        self._pending: _Resume | None = None
        self._epoch_rng: dict[str, Any] | None = None

    # -- public ------------------------------------------------------------------------------
    def run(self) -> WorkflowResult:
        """Create or resume the experiment and train up to ``epochs``."""
        check_writable(self.path)
        if self.name is not None and (self.path / self.name).exists():
            return self._resume(self.path / self.name)
        return self._start()

    # -- start / resume ----------------------------------------------------------------------
    def _current_args(self) -> dict[str, Any] | None:
        args = getattr(self.trainer, "args", None)
        return None if args is None else normalize_args(args)

    def _start(self) -> WorkflowResult:
        args = self._current_args()
        if args is None:
            raise AttributeError("trainer.args is not set: assign self.args = {...} in the "
                                 "trainer's __init__ (it is saved to args.json before setup())")
        run = Run.create(root=self.path, name=self.name, config=args)
        self.folder = run.path
        return self._guarded(run, lambda: self._begin(run, args))

    def _begin(self, run: Run, args: dict[str, Any]) -> WorkflowResult:
        assert self.folder is not None
        write_args(self.folder, args)
        self.trainer.args = args
        self._setup(run)
        return self._train(run, start=1)

    def _resume(self, folder: Path) -> WorkflowResult:
        saved = read_args(folder)  # raises before anything is touched
        current = self._current_args()
        diff = [] if current is None else args_diff(saved, current)
        if diff and not self.override_args:
            raise ValueError(
                f"the args differ from the ones saved in {folder / 'args.json'}:\n  "
                + "\n  ".join(diff)
                + "\nresume with the saved args, or pass Workflow(..., override_args=True)"
            )
        info = _read_run_info(folder)
        progress = info.get("workflow") or {}
        if info.get("status") == "finished" and progress.get("finished") and (
                progress.get("stopped") or int(progress.get("epochs_done", 0)) >= self.epochs):
            done = int(progress.get("epochs_done", 0))
            _log.warning("experiment %s already finished (%d epochs%s); nothing to do",
                         folder, done, f", stopped: {progress['stopped']}"
                         if progress.get("stopped") else "")
            history = History(folder / "history.csv")
            history.load()
            return WorkflowResult(folder, "already_finished", done, history=history.rows)
        run = Run.reopen(folder)
        self.folder = folder
        return self._guarded(run, lambda: self._continue(run, saved, current, diff))

    def _continue(self, run: Run, saved: dict[str, Any], current: dict[str, Any] | None,
                  diff: list[str]) -> WorkflowResult:
        assert self.folder is not None
        if diff:
            run.log_event("args_overridden", "resumed with different args: " + "; ".join(diff),
                          level="warning", data={"differences": diff})
            write_args(self.folder, current or saved)
            run.set_config(current or saved)
        self.trainer.args = current if current is not None and diff else saved
        self._setup(run)
        start = self._load_checkpoint(run)
        return self._train(run, start=start)

    def _setup(self, run: Run) -> None:
        assert self.folder is not None
        self._run = run
        self.trainer.run = run
        self._files = CheckpointFiles(self.folder)
        self._files.remove_leftovers()
        self._history = History(self.folder / "history.csv")
        self._history.load()
        if self.checkpoint is not None and self.checkpoint.run is None:
            self.checkpoint.run = run  # handed back in _guarded
        if self.system:
            from loopwise.watch.system import ensure_system_monitor

            ensure_system_monitor(run)
        self.trainer.setup()
        trainer = self.trainer
        if not isinstance(getattr(trainer, "args", None), dict):
            raise AttributeError("trainer.args is not a dict after setup(); do not replace it "
                                 "in setup() (set it in __init__)")
        model = trainer.get_model()
        if model is None:
            raise AttributeError("the trainer has no model after setup(): set self.model in "
                                 "setup() (or override get_model())")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"get_model() returned a {type(model).__name__}, not a "
                            "torch.nn.Module; set self.model in setup()")
        optimizer = trainer.get_optimizer()
        if optimizer is None:
            raise AttributeError("the trainer has no optimizer after setup(): set "
                                 "self.optimizer in setup() (or override get_optimizer())")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"get_optimizer() returned a {type(optimizer).__name__}, not a "
                            "torch.optim.Optimizer; set self.optimizer in setup()")

    def _load_checkpoint(self, run: Run) -> int:
        """Restore the newest usable checkpoint; return the epoch to start with."""
        assert self._files is not None
        state: dict[str, Any] | None = None
        source = str(self._files.checkpoint_path)
        if self._files.exists():
            try:
                state, note = self._files.load()
                if note:
                    run.log_event("checkpoint_unverified", note, level="warning")
            except CorruptCheckpointError as exc:
                if self.checkpoint is None:
                    raise CheckpointError(
                        f"{exc}. Nothing was changed; restore the file from a backup, or move "
                        "the experiment folder away to start again"
                    ) from exc
                run.log_event("checkpoint_corrupt", f"{exc}; using the CheckpointManager's "
                              "latest good checkpoint", level="warning")
        if state is None and self.checkpoint is not None:
            state = self.checkpoint.load_latest()
            source = f"the latest checkpoint in {self.checkpoint.directory}"
        if state is None:
            return 1
        return self._restore(run, state, source)

    def _restore(self, run: Run, state: dict[str, Any], source: str) -> int:
        missing = [k for k in _REQUIRED if k not in state]
        if missing or state.get("format") != _FORMAT:
            raise ResumeError(f"{source} is not a complete Workflow checkpoint (missing "
                              f"{', '.join(missing) or 'format'})")
        if int(state["world_size"]) != world_size():
            raise ResumeError(f"{source} was written with world size {state['world_size']}, "
                              f"this process has {world_size()}; resume with the same number "
                              "of processes")
        trainer = self.trainer
        restore_component("model", trainer.get_model(), state["model"], source=source)
        restore_component("optimizer", trainer.get_optimizer(), state["optimizer"],
                          source=source)
        restore_component("LR scheduler", trainer.get_scheduler(), state["scheduler"],
                          source=source)
        restore_component("grad scaler", trainer.get_scaler(), state["scaler"], source=source)
        try:
            self.callbacks.load_state_dict(state["callbacks"])
        except (ValueError, KeyError) as exc:
            raise ResumeError(f"cannot restore the callbacks from {source}: {exc}") from exc
        run.global_step = int(state["global_step"])
        epoch, phase = int(state["epoch"]), str(state["phase"])
        loop = None
        if phase == "in_epoch":
            loop = (LoopPosition.from_state(state["loop"]), state["rng"])
        self._pending = _Resume(epoch=epoch, phase=phase,
                                train_metrics=dict(state["train_metrics"] or {}),
                                train_seconds=float(state["train_seconds"]), rng=state["rng"],
                                loop=loop, monitor=state["monitor"],
                                epoch_rng=state.get("epoch_rng"))
        run.log_event("checkpoint_loaded", f"resumed from {source} (epoch {epoch}, {phase})",
                      data={"epoch": epoch, "phase": phase, "global_step": run.global_step})
        return epoch + 1 if phase == "evaluated" else epoch

    # -- the loop ------------------------------------------------------------------------------
    def _guarded(self, run: Run, body: Any) -> WorkflowResult:
        self.trainer._loopwise_track = self._track
        try:
            result: WorkflowResult = body()
        except KeyboardInterrupt:
            run.log_event("interrupted", "interrupted by Ctrl-C", level="warning")
            run.close("interrupted")
            raise
        except BaseException as exc:
            run.close("failed", error="".join(traceback.format_exception(exc)))
            raise
        finally:
            self.trainer._loopwise_track = None
            if self.checkpoint is not None and self.checkpoint.run is run:
                self.checkpoint.run = None
        run.close("finished")
        return result

    def _state_for(self, run: Run) -> LoopState:
        return LoopState(epoch=self._epoch, step=run.global_step,
                         model=self.trainer.get_model(), optimizer=self.trainer.get_optimizer(),
                         run=run)

    def _train(self, run: Run, *, start: int) -> WorkflowResult:
        assert self._history is not None and self.folder is not None
        loop_state = self._state_for(run)
        stop = self.callbacks.dispatch("on_train_begin", loop_state)
        pending, self._pending = self._pending, None
        if pending is not None and pending.phase != "in_epoch":
            restore_rng_state(pending.rng)
        epoch = start
        done = start - 1
        while epoch <= self.epochs and stop is None:
            self._epoch = loop_state.epoch = epoch
            loop_state.step, loop_state.metrics = run.global_step, {}
            if pending is not None and pending.phase == "trained" and pending.epoch == epoch:
                train_metrics, train_s = pending.train_metrics, pending.train_seconds
            else:
                if pending is None or pending.phase != "in_epoch":
                    stop = self.callbacks.dispatch("on_epoch_begin", loop_state) or stop
                train_metrics, train_s = self._train_epoch(run, epoch, pending)
                self._save(run, epoch, "trained", train_metrics=train_metrics,
                           train_seconds=train_s)
            pending = None
            self._phase = "evaluate"
            t0 = time.perf_counter()
            eval_metrics = _clean_metrics(self.trainer.evaluate(), "evaluate()")
            eval_s = time.perf_counter() - t0
            self._phase = None
            metrics = {**train_metrics, **eval_metrics}
            self._record(run, epoch, metrics, train_s, eval_s)
            loop_state.metrics, loop_state.step = dict(metrics), run.global_step
            stop = self.callbacks.dispatch("on_evaluate", loop_state) or stop
            stop = self.callbacks.dispatch("on_epoch_end", loop_state) or stop
            if self.checkpoint is not None:
                self.checkpoint.save(self._full_state(run, epoch, "evaluated"), step=epoch,
                                     metrics=metrics)
            done = epoch
            finished = stop is not None or epoch >= self.epochs
            run.set_info(workflow={"epochs_done": done, "epochs": self.epochs,
                                   "finished": finished,
                                   "stopped": None if stop is None else stop.reason})
            epoch += 1
        self.callbacks.dispatch("on_train_end", loop_state)
        if self.checkpoint is not None:
            self.checkpoint.wait()
        if stop is not None:
            if done >= 1:  # a callback may have changed the model (restore_best_weights)
                self._save(run, done, "evaluated")
            run.log_event("stopped", f"training stopped by {stop.source}: {stop.reason}",
                          data={"source": stop.source, "epoch": done})
        run.set_info(workflow={"epochs_done": done, "epochs": self.epochs, "finished": True,
                               "stopped": None if stop is None else stop.reason})
        return WorkflowResult(self.folder, "stopped" if stop else "finished", done, stop,
                              list(self._history.rows))

    def _train_epoch(self, run: Run, epoch: int,
                     pending: _Resume | None) -> tuple[dict[str, float], float]:
        self._phase = "train"
        self._train_tracked = False
        self._train_monitor = None
        before = 0.0
        if pending is not None and pending.phase == "in_epoch":
            self._pending = pending  # picked up by the first track() of train_loop
            before = pending.train_seconds
        if pending is not None and pending.phase == "in_epoch" and pending.epoch_rng:
            restore_rng_state(pending.epoch_rng)  # code before the loop draws as it did then
        self._epoch_rng = capture_rng_state() if self.checkpoint_every is not None else None
        self._epoch_t0 = time.perf_counter() - before
        try:
            result = self.trainer.train_loop()
        finally:
            self._phase = None
        if self._pending is not None:
            self._pending = None
            raise ResumeError("the checkpoint was written in the middle of an epoch, but "
                              "train_loop() did not iterate a loader through self.track(); "
                              "mid-epoch resume needs the same loop as the run that saved it")
        return _clean_metrics(result, "train_loop()"), time.perf_counter() - self._epoch_t0

    def _record(self, run: Run, epoch: int, metrics: dict[str, float], train_s: float,
                eval_s: float) -> None:
        assert self._history is not None
        self._history.upsert({"epoch": float(epoch), **metrics, "train_seconds": train_s,
                              "eval_seconds": eval_s})
        # series epoch/<name> at step=epoch, and a metrics line in the run's log.jsonl
        run.log_epoch(epoch, {**metrics, "train_seconds": train_s, "eval_seconds": eval_s})
        shown = ", ".join(f"{k}={v:.6g}" for k, v in metrics.items() if math.isfinite(v))
        _log.info("epoch %d/%d: %s", epoch, self.epochs, shown)

    # -- checkpoints ---------------------------------------------------------------------------
    def _full_state(self, run: Run, epoch: int, phase: str, *,
                    loop: LoopPosition | None = None,
                    train_metrics: Mapping[str, float] | None = None,
                    train_seconds: float = 0.0) -> dict[str, Any]:
        trainer = self.trainer
        scheduler, scaler = trainer.get_scheduler(), trainer.get_scaler()
        monitor = self._train_monitor
        return {
            "format": _FORMAT, "version": 1, "epoch": epoch, "phase": phase,
            "global_step": run.global_step,
            "model": trainer.get_model().state_dict(),
            "optimizer": trainer.get_optimizer().state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "scaler": None if scaler is None else scaler.state_dict(),
            "rng": capture_rng_state(),
            "callbacks": self.callbacks.state_dict(),
            "monitor": None if monitor is None else monitor.state_dict(),
            "loop": None if loop is None else loop.to_state(),
            "epoch_rng": self._epoch_rng if loop is not None else None,
            "train_metrics": dict(train_metrics or {}),
            "train_seconds": train_seconds,
            "world_size": world_size(),
        }

    def _save(self, run: Run, epoch: int, phase: str, **extra: Any) -> None:
        assert self._files is not None
        state = self._full_state(run, epoch, phase, **extra)
        self._files.save(state, state["model"], epoch=epoch)

    def _on_mid_epoch(self, position: LoopPosition) -> None:
        assert self._run is not None
        self._save(self._run, self._epoch, "in_epoch", loop=position,
                   train_seconds=time.perf_counter() - self._epoch_t0)

    def _track(self, iterable: Iterable[Any], desc: str | None,
               options: dict[str, Any]) -> TrainingMonitor[Any]:
        for key in ("run", "record", "root", "name", "config"):
            if key in options:
                raise TypeError(f"under a Workflow, track() records into the experiment's run; "
                                f"do not pass {key}=")
        options.setdefault("system", self.system)
        try:
            sampler, _ = find_resumable_sampler(iterable)
        except TypeError:
            sampler = None
        if sampler is not None:  # the pass order depends on (seed, epoch) only
            sampler.set_epoch(max(self._epoch - 1, 0))
        first_train = self._phase == "train" and not self._train_tracked
        if first_train:
            self._train_tracked = True
        pending = self._pending if first_train else None
        if first_train and (self.checkpoint_every is not None or pending is not None):
            self._pending = None
            loader = ResumableLoader(iterable,  # type: ignore[arg-type]
                                     every=self.checkpoint_every,
                                     on_checkpoint=self._on_mid_epoch,
                                     resume=None if pending is None else pending.loop)
            monitor: TrainingMonitor[Any] = TrainingMonitor(loader, desc, run=self._run,
                                                            **options)
            if pending is not None and pending.monitor is not None:
                monitor.load_state_dict(pending.monitor)
        else:
            monitor = TrainingMonitor(iterable, desc, run=self._run, **options)
        if first_train:
            self._train_monitor = monitor
        return monitor


def _read_run_info(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} has args.json but no run.json; it is not a complete "
                                "loopwise experiment. Move it away or choose another name"
                                ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{folder / 'run.json'} is corrupt ({exc}); it was left as it was"
                         ) from exc
    return data if isinstance(data, dict) else {}
