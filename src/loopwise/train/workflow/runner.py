"""``Workflow``: create or resume an experiment folder and run a ``Trainer`` epoch by epoch.

Each epoch: ``on_epoch_begin``; ``train_loop()``; save ``last_checkpoint.pth`` and
``last_weights.pt``; ``evaluate()``; record the epoch; ``on_evaluate``, ``on_epoch_end``; save to
the optional ``CheckpointManager``. A resume continues where the checkpoint was taken (see
``docs/workflow.md``). Beside it: ``passes``, ``state``, ``checks``, ``epochs``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.distributed.group import TrainGroup, train_group
from loopwise.distributed.loader import LoopPosition
from loopwise.distributed.rng import restore_rng_state
from loopwise.record.opening import end_run
from loopwise.record.recorder import Recorder, TrainingRun, check_exporters
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.train.callbacks.base import Callback, CallbackList, LoopState
from loopwise.train.callbacks.histograms import WeightHistograms, check_every
from loopwise.train.interrupt import GracefulInterrupt, HeldInterrupt
from loopwise.train.workflow.checks import check_flag, check_options, check_setup
from loopwise.train.workflow.epochs import finished_result, record_epoch, record_lr
from loopwise.train.workflow.experiment import History, write_args
from loopwise.train.workflow.opening import Options, open_everywhere
from loopwise.train.workflow.passes import EpochPasses
from loopwise.train.workflow.result import WorkflowResult
from loopwise.train.workflow.state import (
    CHECKPOINT_FILE,
    WEIGHTS_FILE,
    FoundCheckpoint,
    ResumePoint,
    capture_state,
    distribute_trainer,
    restore_found,
)
from loopwise.train.workflow.trainer import Trainer
from loopwise.watch.health.runner import ensure_health_monitor
from loopwise.watch.monitor import TrainingMonitor
from loopwise.watch.system_run import ensure_system_monitor, system_option


class Workflow:
    """Run ``trainer`` for ``epochs`` epochs in the experiment folder ``path/name``.

    ``checkpoint``: an optional :class:`~loopwise.CheckpointManager` keeping last/best epochs.
    ``checkpoint_every``: save mid-epoch every N batches of the first loader ``train_loop``
    tracks. ``override_args``: resume though ``trainer.args`` differ (recorded).
    ``allow_unverified``: resume from a ``last_checkpoint.pth`` whose hash cannot be checked.
    ``system``: True (every 2 s, or keep a sampler already running), seconds, or False.
    ``exporters`` mirror the run; ``report`` writes ``report.html`` at the end.
    ``allow_reshard``: under torchrun, resume a checkpoint of another number of processes
    (an epoch saved mid-pass starts again). ``histogram_every``: weight and gradient
    histograms in the run every N epochs (0: off). All options: ``docs/workflow.md``; under
    torchrun: ``docs/distributed.md``.
    """

    def __init__(self, trainer: Trainer, path: str | os.PathLike[str], epochs: int,
                 name: str | None = None, *, callbacks: Iterable[Callback] = (),
                 checkpoint: CheckpointManager | None = None,
                 checkpoint_every: int | None = None, override_args: bool = False,
                 allow_unverified: bool = False, system: bool | float = True,
                 health: bool = True, exporters: Iterable[Recorder] = (),
                 report: bool = True, allow_reshard: bool = False,
                 histogram_every: int = 0) -> None:
        check_options(trainer, path, epochs, name, checkpoint, checkpoint_every)
        check_every(histogram_every)
        self.trainer = trainer
        self.path = Path(path)
        self.epochs = int(epochs)  # (a NumPy int too: checked above)
        self.name = name
        callbacks = list(callbacks)  # (CallbackList checks each one)
        if histogram_every and not any(isinstance(c, WeightHistograms) for c in callbacks):
            callbacks.append(WeightHistograms(histogram_every))  # weights and gradients
        self.callbacks = CallbackList(callbacks)
        self._ends_epoch = any(type(c).on_epoch_end is not Callback.on_epoch_end
                               for c in self.callbacks)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.override_args = bool(override_args)
        self.allow_unverified = check_flag(allow_unverified, "allow_unverified")
        self.allow_reshard = check_flag(allow_reshard, "allow_reshard")
        self.system, self.system_interval = system_option(system)
        self.health = bool(health)
        self.exporters = check_exporters(exporters)
        self.report = bool(report)
        self.folder: Path | None = None
        self._run: TrainingRun | None = None
        self._files: NamedFiles | None = None
        self._history: History | None = None
        self._epoch = 0
        self._passes = EpochPasses(trainer, on_checkpoint=self._on_mid_epoch,
                                   on_interrupt=self._interrupted)
        self._pending: ResumePoint | None = None
        self._group: TrainGroup | None = None  # under torchrun: a TrainGroup (distributed.group)

    # -- public ------------------------------------------------------------------------------
    def run(self) -> WorkflowResult:
        """Create or resume the experiment and train up to ``epochs``. Under torchrun rank 0
        decides (the folder, start or resume) and every rank takes its decision."""
        self._group = train_group()
        opening = open_everywhere(self._group, self.trainer, Options(
            self.path, self.name, self.epochs, self.checkpoint, self.callbacks,
            self.override_args, self.allow_unverified, self.allow_reshard))
        self.folder = opening.folder
        if opening.action == "finished":
            return finished_result(opening.folder, opening.done)
        run, args = opening.run, opening.args
        assert run is not None
        if opening.action == "start":
            assert args is not None
            return self._guarded(run, lambda: self._begin(run, args))
        return self._guarded(run, lambda: self._continue(run, opening.saved, opening.current,
                                                         opening.diff, opening.found))

    # -- start / resume ----------------------------------------------------------------------
    def _begin(self, run: TrainingRun, args: dict[str, Any]) -> WorkflowResult:
        assert self.folder is not None
        if self._leader:
            write_args(self.folder, args)
        self.trainer.args = args
        self._setup(run)
        return self._train(run, start=1)

    @property
    def _leader(self) -> bool:
        """This process records and writes the experiment's files (rank 0, or no group)."""
        return self._group is None or bool(self._group.leader)

    def _continue(self, run: TrainingRun, saved: dict[str, Any], current: dict[str, Any] | None,
                  diff: list[str], found: FoundCheckpoint | None) -> WorkflowResult:
        assert self.folder is not None
        if diff:
            run.log_event("args_overridden", "resumed with different args: " + "; ".join(diff),
                          level="warning", data={"differences": diff})
            if self._leader:
                write_args(self.folder, current or saved)
            run.set_config(current or saved)
        self.trainer.args = current if current is not None and diff else saved
        self._setup(run)
        start = self._load_checkpoint(run, found)
        return self._train(run, start=start)

    def _setup(self, run: TrainingRun) -> None:
        assert self.folder is not None
        leader = self._leader
        self._run = run
        self.trainer.run = run
        for exporter in self.exporters if leader else ():
            run.add_exporter(exporter)
        self._files = NamedFiles(self.folder)
        if leader:
            self._files.remove_leftovers([CHECKPOINT_FILE, WEIGHTS_FILE])
        # history.csv and run.json are rewritten on the save thread, in order with the
        # checkpoints (under torchrun, at once: rank 0 writes, the others wait at barriers)
        self._history = History(self.folder / "history.csv", writes=leader,
                                later=self._files.write_later if self._group is None else None)
        self._history.load()
        if self.checkpoint is not None and self.checkpoint.run is None:
            self.checkpoint.run = run  # handed back in _guarded
        if self.health and isinstance(run, Run):  # rank 0, before the callbacks start: a
            ensure_health_monitor(run)  # TrendWatcher trims its detectors
        self.trainer.setup()
        check_setup(self.trainer)
        if self._group is not None:  # the model in DDP, the loaders split in track()
            distribute_trainer(self.trainer)
            self._passes.group = self._group
        elif self.system and isinstance(run, Run):  # after setup(): a sampler the trainer
            ensure_system_monitor(run, interval=self.system_interval)  # started there is kept
            # (under torchrun each rank's monitors sample, rank 0 records)

    def _load_checkpoint(self, run: TrainingRun, found: FoundCheckpoint | None) -> int:
        """Restore the checkpoint read before the run was reopened; return the epoch to
        start with. The console says which file was used."""
        self._pending = restore_found(self.trainer, self.callbacks, run, found,
                                      quiet=not self._leader)
        return 1 if self._pending is None else self._pending.start_epoch

    # -- the loop ------------------------------------------------------------------------------
    def _guarded(self, run: TrainingRun, body: Any) -> WorkflowResult:
        """Run ``body``; then the one end of a run (:func:`~loopwise.record.opening.end_run`):
        the status from how it ended, the run closed, ``report.html`` written (finished or
        not: the report of a failed run is the one a user opens first).

        Ctrl-C (:class:`~loopwise.train.interrupt.GracefulInterrupt`, not under torchrun): the
        first ends the current step, saves a checkpoint (mid-epoch when the training loader
        can resume there, else the last epoch's is the resume point) and ends the run
        ``interrupted``; the second raises ``KeyboardInterrupt`` at once; either way the run
        closes ``interrupted`` with its record intact (a Ctrl-C during the close is held)."""
        self.trainer._loopwise_track = self._track
        status, error = "finished", None
        guard = GracefulInterrupt() if self._group is None else contextlib.nullcontext(None)
        try:
            with guard as interrupt:
                self._passes.interrupt = interrupt
                result: WorkflowResult = body()
        except KeyboardInterrupt as exc:
            status = "interrupted"
            with HeldInterrupt(status):
                self._saves_done(run, failing=True)  # the checkpoint in flight is finished
                if not str(exc):  # a second Ctrl-C (or one outside the graceful guard)
                    run.log_event("interrupted", "interrupted by Ctrl-C", level="warning")
            raise
        except BaseException as exc:
            self._saves_done(run, failing=True)
            status, error = exit_status(type(exc), exc, exc.__traceback__)
            if self._group is not None:  # torchrun: every failed rank's traceback, earliest first
                error = self._group.on_failure(error)
            raise
        finally:
            self._passes.interrupt = None
            self.trainer._loopwise_track = None
            if self.checkpoint is not None and self.checkpoint.run is run:
                self.checkpoint.run = None
            with HeldInterrupt(status):  # the close: one status in every file and mirror
                end_run(run, status=status, error=error,
                        before=self._report if self.report and self._leader else None)
        return result

    def _interrupted(self, position: LoopPosition | None, train_seconds: float,
                     batches: int) -> None:
        """After a first Ctrl-C, at the end of a step: save where the run is and raise
        ``KeyboardInterrupt`` saying where (``batches``: of the training pass; -1: in the
        evaluation, -2: at the end of an epoch's training pass, 0: after the epoch)."""
        assert self._run is not None and self.folder is not None
        run, epoch = self._run, self._epoch
        if position is not None:
            self._save(run, epoch, "in_epoch", loop=position, train_seconds=train_seconds)
            where, resume = (f"in epoch {epoch} after {batches} batches",
                             f"resume continues at batch {batches + 1}")
        elif batches == -1:
            where, resume = (f"in the evaluation of epoch {epoch}",
                             "resume evaluates it again")
        elif batches == -2:
            where, resume = f"after the training pass of epoch {epoch}", "resume evaluates it"
        elif batches == 0:
            where, resume = f"after epoch {epoch}", f"resume starts epoch {epoch + 1}"
        else:
            where = f"in epoch {epoch} after {batches} batches"
            resume = (f"resume starts epoch {epoch} again (its loader cannot resume mid-epoch: "
                      "give it a loopwise ResumableSampler)")
        self._saves_done(run, failing=False)  # on disk before the run says so
        path = self.folder / CHECKPOINT_FILE
        message = f"interrupted by Ctrl-C {where}; checkpoint at {path}; {resume}"
        run.log_event("interrupted", message, level="warning",
                      data={"epoch": epoch, "batch": batches, "checkpoint": str(path)})
        raise KeyboardInterrupt(message)

    @staticmethod
    def _report(path: Path, status: str | None, error: str | None) -> None:
        """``report.html``, written before the close so that the exporters upload it."""
        from loopwise.view.report import report_at_end

        report_at_end(path, ending=None if status is None else {
            "status": status, "end_time": time.time(), "error": error})

    def _state_for(self, run: TrainingRun) -> LoopState:
        return LoopState(epoch=self._epoch, step=run.global_step,
                         model=self.trainer.get_model(), optimizer=self.trainer.get_optimizer(),
                         run=run)

    def _train(self, run: TrainingRun, *, start: int) -> WorkflowResult:
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
                    record_lr(run, self.trainer, self.callbacks, epoch)
                    stop = self.callbacks.dispatch("on_epoch_begin", loop_state) or stop
                train_metrics, train_s = self._passes.train(pending,
                                                            every=self.checkpoint_every)
                train_metrics = self._everywhere(run, train_metrics)
                self._save(run, epoch, "trained", train_metrics=train_metrics,
                           train_seconds=train_s)
                self._stop_if_asked(-2)
            pending = None
            eval_metrics, eval_s = self._passes.evaluate()
            metrics = {**train_metrics, **self._everywhere(run, eval_metrics)}
            record_epoch(run, self._history, self.trainer, epoch, self.epochs, metrics,
                         train_s, eval_s, health=self.health and self._leader)
            loop_state.metrics, loop_state.step = dict(metrics), run.global_step
            stop = self.callbacks.dispatch("on_evaluate", loop_state) or stop
            assert self._files is not None
            if self._ends_epoch:  # a callback at the epoch's end sees this epoch's checkpoint
                self._files.wait()  # and history.csv on disk (they overlapped the evaluation);
                # without one they overlap the next epoch, committed before its save starts
            stop = self.callbacks.dispatch("on_epoch_end", loop_state) or stop
            if self.checkpoint is not None:
                state = self._full_state(run, epoch, "evaluated")
                if self._leader:
                    self.checkpoint.save(state, step=epoch, metrics=metrics)
                self._barrier()
            done = epoch
            finished = stop is not None or epoch >= self.epochs
            self._progress(run, {"epochs_done": done, "epochs": self.epochs,
                                 "finished": finished,
                                 "stopped": None if stop is None else stop.reason})
            if not finished:
                self._stop_if_asked(0)
            epoch += 1
        self.callbacks.dispatch("on_train_end", loop_state)
        if self.checkpoint is not None:
            self.checkpoint.wait()
        if done >= start:  # the end state (a callback may have changed the model, e.g.
            # restore_best_weights), and a later run with more epochs continues after it
            self._save(run, done, "evaluated")
        self._saves_done(run, failing=False)  # the end state is on disk before the run ends
        if stop is not None:
            run.log_event("stopped", f"training stopped by {stop.source}: {stop.reason}",
                          data={"source": stop.source, "epoch": done})
        run.set_info(workflow={"epochs_done": done, "epochs": self.epochs, "finished": True,
                               "stopped": None if stop is None else stop.reason})
        return WorkflowResult(self.folder, "stopped" if stop else "finished", done, stop,
                              list(self._history.rows))

    def _progress(self, run: TrainingRun, workflow: dict[str, Any]) -> None:
        """The epochs done, in ``run.json``: rewritten on the save thread after the epoch's
        files (the end of the run waits for it), at once under torchrun."""
        if self._group is not None or self._files is None:
            run.set_info(workflow=workflow)
            return
        self._files.write_later(lambda: run.set_info(workflow=workflow))

    def _everywhere(self, run: TrainingRun, metrics: dict[str, float]) -> dict[str, float]:
        """Under torchrun: ``metrics`` averaged over the ranks (the same decisions on every
        rank) and rank 0's global step on every rank; as they are otherwise."""
        if self._group is None:
            return metrics
        shared: dict[str, float] = self._group.mean_values(metrics)
        step = self._group.broadcast(run.global_step)
        if not self._leader:
            run.restore_step(step)
        return shared

    def _barrier(self) -> None:
        if self._group is not None:
            self._group.barrier()

    # -- checkpoints ---------------------------------------------------------------------------
    def _full_state(self, run: TrainingRun, epoch: int, phase: str, **extra: Any) -> dict[str, Any]:
        return capture_state(self.trainer, self.callbacks, run, epoch, phase,
                             monitor=self._passes.monitor, epoch_rng=self._passes.epoch_rng,
                             **extra)

    def _save(self, run: TrainingRun, epoch: int, phase: str, **extra: Any) -> None:
        assert self._files is not None
        state = self._full_state(run, epoch, phase, **extra)  # every rank (the monitor's
        files = {CHECKPOINT_FILE: state, WEIGHTS_FILE: state["model"]}  # refresh is an exchange)
        if self._group is None:  # snapshot now; the record flushed, then the files written and
            # fsynced on a background thread, each save committed before the next one starts
            self._files.save_later(files, step=epoch, before=run.flush)
            return
        if self._leader:  # rank 0 writes, the others wait for it: no rank reads a half-written
            run.flush()  # file; the record up to here is on disk first: a resume leaves no gap
            self._files.save(files, step=epoch)
        self._barrier()

    def _saves_done(self, run: TrainingRun, *, failing: bool) -> None:
        """Wait for the background save in flight (at the end, or before the run closes). While
        the run is failing already, a failed save is recorded as an event, not raised over the
        first error."""
        if self._files is None:
            return
        if not failing:
            self._files.close()
            return
        try:
            self._files.close()
        except Exception as exc:  # recorded, and the run's own error goes on up
            run.log_event("checkpoint_failed", f"the last checkpoint save failed: {exc}",
                          level="error", data={"error": repr(exc)})

    def _stop_if_asked(self, batches: int) -> None:
        """Between passes: end the run here when a Ctrl-C asked for it."""
        guard = self._passes.interrupt
        if guard is not None and guard.requested:
            self._interrupted(None, 0.0, batches)

    def _on_mid_epoch(self, position: LoopPosition, train_seconds: float) -> None:
        assert self._run is not None
        self._save(self._run, self._epoch, "in_epoch", loop=position, train_seconds=train_seconds)

    def _track(self, iterable: Iterable[Any], desc: str | None,
               options: dict[str, Any]) -> TrainingMonitor[Any]:
        recorded = self._run if isinstance(self._run, Run) else None  # rank 0 records
        return self._passes.track(iterable, desc, options, run=recorded, epoch=self._epoch,
                                  every=self.checkpoint_every, system=self.system)

