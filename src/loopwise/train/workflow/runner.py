"""``Workflow``: create or resume an experiment folder and run a ``Trainer`` epoch by epoch.

Each epoch: ``on_epoch_begin``; ``train_loop()``; save ``last_checkpoint.pth`` and
``last_weights.pt``; ``evaluate()``; record the epoch; ``on_evaluate``, ``on_epoch_end``; save to
the optional ``CheckpointManager``. A resume continues where the checkpoint was taken (see
``docs/workflow.md``). Beside it: ``passes``, ``state``, ``checks``, ``epochs``.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.record.recorder import Recorder
from loopwise.record.run import Run
from loopwise.train.callbacks.base import Callback, CallbackList, LoopState
from loopwise.train.resume.rng import restore_rng_state
from loopwise.train.resume.sampler import LoopPosition
from loopwise.train.workflow.checks import (
    already_finished,
    check_checkpoint_folder,
    check_exporters,
    check_flag,
    check_options,
    check_setup,
    current_args,
    plan_resume,
    read_run_info,
)
from loopwise.train.workflow.epochs import record_epoch, record_lr
from loopwise.train.workflow.experiment import (
    History,
    check_writable,
    read_args,
    write_args,
)
from loopwise.train.workflow.passes import EpochPasses
from loopwise.train.workflow.result import WorkflowResult
from loopwise.train.workflow.state import (
    CHECKPOINT_FILE,
    WEIGHTS_FILE,
    FoundCheckpoint,
    ResumePoint,
    capture_state,
    prepare_resume,
    restore_found,
)
from loopwise.train.workflow.trainer import Trainer
from loopwise.watch.health.runner import ensure_health_monitor
from loopwise.watch.monitor import TrainingMonitor
from loopwise.watch.system import ensure_system_monitor, system_option

_log = logging.getLogger(__name__)


class Workflow:
    """Run ``trainer`` for ``epochs`` epochs in the experiment folder ``path/name``.

    ``checkpoint``: an optional :class:`~loopwise.CheckpointManager` keeping last/best epochs.
    ``checkpoint_every``: save mid-epoch every N batches of the first loader ``train_loop``
    tracks. ``override_args``: resume though ``trainer.args`` differ (recorded).
    ``allow_unverified``: resume from a ``last_checkpoint.pth`` whose hash cannot be checked.
    ``system``: True (every 2 s, or keep a sampler already running), seconds, or False.
    ``exporters`` mirror the run; ``report`` writes ``report.html`` at the end. All options:
    ``docs/workflow.md``.
    """

    def __init__(self, trainer: Trainer, path: str | os.PathLike[str], epochs: int,
                 name: str | None = None, *, callbacks: Iterable[Callback] = (),
                 checkpoint: CheckpointManager | None = None,
                 checkpoint_every: int | None = None, override_args: bool = False,
                 allow_unverified: bool = False, system: bool | float = True,
                 health: bool = True, exporters: Iterable[Recorder] = (),
                 report: bool = True) -> None:
        check_options(trainer, path, epochs, name, checkpoint, checkpoint_every)
        self.trainer = trainer
        self.path = Path(path)
        self.epochs = epochs
        self.name = name
        self.callbacks = CallbackList(callbacks)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.override_args = bool(override_args)
        self.allow_unverified = check_flag(allow_unverified, "allow_unverified")
        self.system, self.system_interval = system_option(system)
        self.health = bool(health)
        self.exporters = check_exporters(exporters)
        self.report = bool(report)
        self.folder: Path | None = None
        self._run: Run | None = None
        self._files: NamedFiles | None = None
        self._history: History | None = None
        self._epoch = 0
        self._passes = EpochPasses(trainer, on_checkpoint=self._on_mid_epoch)
        self._pending: ResumePoint | None = None

    # -- public ------------------------------------------------------------------------------
    def run(self) -> WorkflowResult:
        """Create or resume the experiment and train up to ``epochs``."""
        from loopwise.integrations.distributed import refuse_group  # distributed: not yet

        refuse_group("Workflow.run()")
        check_writable(self.path)
        check_checkpoint_folder(self.checkpoint, self.path, self.name)
        if self.name is not None and (self.path / self.name).exists():
            return self._resume(self.path / self.name)
        return self._start()

    # -- start / resume ----------------------------------------------------------------------
    def _start(self) -> WorkflowResult:
        args = current_args(self.trainer)
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
        # everything is checked before Run.reopen: a refusal leaves the folder as it was
        saved = read_args(folder)
        current = current_args(self.trainer)
        info = read_run_info(folder)
        decision = plan_resume(folder, saved, current, info, self.epochs, self.override_args)
        diff = decision.differences
        finished = already_finished(info, self.epochs)
        if decision.action == "finished" and finished is not None:
            done, stopped = finished
            _log.warning("experiment %s already finished (%d epochs%s); nothing to do",
                         folder, done, f", stopped: {stopped}" if stopped else "")
            history = History(folder / "history.csv")
            history.load()
            return WorkflowResult(folder, "already_finished", done, history=history.rows)
        found = prepare_resume(folder, self.checkpoint, self.callbacks, info,
                               allow_unverified=self.allow_unverified)
        run = Run.reopen(folder)
        self.folder = folder
        return self._guarded(run, lambda: self._continue(run, saved, current, diff, found))

    def _continue(self, run: Run, saved: dict[str, Any], current: dict[str, Any] | None,
                  diff: list[str], found: FoundCheckpoint | None) -> WorkflowResult:
        assert self.folder is not None
        if diff:
            run.log_event("args_overridden", "resumed with different args: " + "; ".join(diff),
                          level="warning", data={"differences": diff})
            write_args(self.folder, current or saved)
            run.set_config(current or saved)
        self.trainer.args = current if current is not None and diff else saved
        self._setup(run)
        start = self._load_checkpoint(run, found)
        return self._train(run, start=start)

    def _setup(self, run: Run) -> None:
        assert self.folder is not None
        self._run = run
        self.trainer.run = run
        for exporter in self.exporters:
            run.add_exporter(exporter)
        self._files = NamedFiles(self.folder)
        self._files.remove_leftovers([CHECKPOINT_FILE, WEIGHTS_FILE])
        self._history = History(self.folder / "history.csv")
        self._history.load()
        if self.checkpoint is not None and self.checkpoint.run is None:
            self.checkpoint.run = run  # handed back in _guarded
        if self.health:  # before the callbacks start: a TrendWatcher trims its detectors
            ensure_health_monitor(run)
        self.trainer.setup()
        check_setup(self.trainer)
        if self.system:  # after setup(): a sampler the trainer started there is kept
            ensure_system_monitor(run, interval=self.system_interval)

    def _load_checkpoint(self, run: Run, found: FoundCheckpoint | None) -> int:
        """Restore the checkpoint read before the run was reopened; return the epoch to
        start with. The console says which file was used."""
        self._pending = restore_found(self.trainer, self.callbacks, run, found)
        return 1 if self._pending is None else self._pending.start_epoch

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
        if self.report:
            from loopwise.view.report import report_at_end

            report_at_end(run.path)
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
                    self._record_lr(run, epoch)
                    stop = self.callbacks.dispatch("on_epoch_begin", loop_state) or stop
                train_metrics, train_s = self._passes.train(pending,
                                                            every=self.checkpoint_every)
                self._save(run, epoch, "trained", train_metrics=train_metrics,
                           train_seconds=train_s)
            pending = None
            eval_metrics, eval_s = self._passes.evaluate()
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
        if done >= start:  # the end state (a callback may have changed the model, e.g.
            # restore_best_weights), and a later run with more epochs continues after it
            self._save(run, done, "evaluated")
        if stop is not None:
            run.log_event("stopped", f"training stopped by {stop.source}: {stop.reason}",
                          data={"source": stop.source, "epoch": done})
        run.set_info(workflow={"epochs_done": done, "epochs": self.epochs, "finished": True,
                               "stopped": None if stop is None else stop.reason})
        return WorkflowResult(self.folder, "stopped" if stop else "finished", done, stop,
                              list(self._history.rows))

    def _record(self, run: Run, epoch: int, metrics: dict[str, float], train_s: float,
                eval_s: float) -> None:
        assert self._history is not None
        record_epoch(run, self._history, self.trainer, epoch, self.epochs, metrics,
                     train_s, eval_s, health=self.health)

    def _record_lr(self, run: Run, epoch: int) -> None:
        record_lr(run, self.trainer, self.callbacks, epoch)

    # -- checkpoints ---------------------------------------------------------------------------
    def _full_state(self, run: Run, epoch: int, phase: str, **extra: Any) -> dict[str, Any]:
        return capture_state(self.trainer, self.callbacks, run, epoch, phase,
                             monitor=self._passes.monitor, epoch_rng=self._passes.epoch_rng,
                             **extra)

    def _save(self, run: Run, epoch: int, phase: str, **extra: Any) -> None:
        assert self._files is not None
        state = self._full_state(run, epoch, phase, **extra)
        run.flush()  # the record up to here is on disk first: a resume from it leaves no gap
        self._files.save({CHECKPOINT_FILE: state, WEIGHTS_FILE: state["model"]}, step=epoch)

    def _on_mid_epoch(self, position: LoopPosition, train_seconds: float) -> None:
        assert self._run is not None
        self._save(self._run, self._epoch, "in_epoch", loop=position, train_seconds=train_seconds)

    def _track(self, iterable: Iterable[Any], desc: str | None,
               options: dict[str, Any]) -> TrainingMonitor[Any]:
        return self._passes.track(iterable, desc, options, run=self._run, epoch=self._epoch,
                                  every=self.checkpoint_every, system=self.system)

