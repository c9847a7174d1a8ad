"""TrainingSession: epochs of training and validation bars, epoch summaries, all recorded
(``loopwise.TrainingSession``; the reference's session, in Python).

```python
session = TrainingSession("MyCNN", epochs, len(train_loader), len(val_loader), model=model,
                          input_size=(32, 3, 32, 32))
session.start_training()                      # model architecture, "Starting training..."
for epoch in range(1, epochs + 1):
    session.start_epoch(epoch)
    for step, batch in enumerate(train_loader, 1):
        session.update_training_progress(step, running_loss, running_acc)
    session.finish_training_epoch()
    session.start_validation()
    ...
    session.finish_validation_epoch()
    session.print_epoch_summary()
```

Recorded in the run (``docs/record.md``): every training step as ``loss``, ``accuracy`` and the
metrics' own names at the global step; per epoch ``epoch/<name>`` (training) and
``epoch/val_<name>`` (validation) at the step where the epoch ended; events ``session_start``,
``model_summary``, ``epoch_end``, ``session_order``. Values are shown and recorded as given (the
epoch summary is each phase's last value: pass running averages, as the reference does).

Calls out of order are errors or :class:`SessionOrderWarning` (details: ``docs/progress.md``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from types import TracebackType
from typing import Any, SupportsFloat, TextIO

from torch import nn

from loopwise.distributed.group import TrainGroup, train_group
from loopwise.distributed.local import quiet
from loopwise.record.opening import end_run, open_run
from loopwise.record.recorder import Recorder
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.utils.validate import check_int
from loopwise.watch.accumulator import StepAccumulator
from loopwise.watch.hostcopy import MediaLog
from loopwise.watch.session_checks import IDLE as _IDLE
from loopwise.watch.session_checks import NEW as _NEW
from loopwise.watch.session_checks import TRAIN as _TRAIN
from loopwise.watch.session_checks import TRAINED as _TRAINED
from loopwise.watch.session_checks import VAL as _VAL
from loopwise.watch.session_checks import (
    check_session_args,
    check_session_state,
)
from loopwise.watch.session_phases import SessionPhases
from loopwise.watch.session_values import (
    EpochResult,
    SessionOrderWarning,
    SessionRecorder,
)
from loopwise.watch.system_run import start_rank_system

__all__ = ["EpochResult", "SessionOrderWarning", "TrainingSession"]

_PLAIN = (float, type(None))


class TrainingSession:
    """Structured training with bars and summaries; see the module doc for the call order.

    ``run=None`` makes a run under ``root`` (closed at the end of the last epoch, by
    ``close()``, or by ``with``); a given ``run`` is never closed by the session.
    ``record=False`` records nothing. ``system`` starts the run's system sampler. Output goes to
    ``file`` (default ``sys.stderr``, bars and text alike); ``clock`` drives the bars.
    """

    def __init__(
        self,
        model_name: str,
        epochs: int,
        steps_per_epoch: int,
        validation_steps: int,
        *,
        model: nn.Module | None = None,
        input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
        run: Run | None = None,
        root: str | os.PathLike[str] = "runs",
        record: bool = True,
        system: bool = True,
        health: bool = True,
        exporters: Sequence[Recorder] = (),
        file: TextIO | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        epochs, steps_per_epoch, validation_steps = check_session_args(
            model_name, epochs, steps_per_epoch, validation_steps, model, input_size, run,
            record, file, clock, exporters)
        self.model_name = model_name
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.validation_steps = validation_steps
        group = train_group()  # under torchrun: the TrainGroup fit and Workflow use too
        self._group = group
        if group is not None and not group.leader:  # torchrun: rank 0 shows and records
            run, record, exporters, file = None, False, (), quiet()
        self._model = model
        self._input_size = input_size
        self._system = system
        own_run = run is None and record
        if own_run:
            run = open_run(root, None, config={"model_name": model_name, "epochs": epochs,
                                           "steps_per_epoch": steps_per_epoch,
                                           "validation_steps": validation_steps}).run
        self.run: Run | None = run
        for exporter in exporters if run is not None else ():
            run.add_exporter(exporter)  # type: ignore[union-attr]
        self._rec = SessionRecorder(run, health=health, **({} if clock is None else {
            "perf": clock}))
        self._ph = SessionPhases(  # the phase state and its transitions: held, not inherited
            model_name=model_name, epochs=epochs, validation_steps=validation_steps, run=run,
            own_run=own_run, rec=self._rec, file=file if file is not None else sys.stderr,
            clock=clock)
        if group is not None:  # sync on a step count; every rank's system samples
            group.attach_session(self._rec)
            if system:
                start_rank_system(group, self._rec.acc.stats)
            self._system = False
        # per-step shortcuts into the recorder's accumulator
        self._values, self._add_step = self._rec.values, self._rec.add_step
        acc = self._rec.acc
        self._acc, self._times, self._acc_log = acc, acc.times, acc.log
        self._perf = self._rec.perf
        self._recording = run is not None or group is not None  # torchrun: every rank sums
        self._inline = group is None  # the step path below; under torchrun, the reducer's
        self._known = self._values.known
        self._media = MediaLog(run, lambda: self._ph.global_step)

    @property
    def global_step(self) -> int:
        """Training steps done over the run (continues a given run's ``global_step``)."""
        return self._ph.global_step

    @property
    def closed(self) -> bool:
        return self._ph.closed

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

    # --- phases -----------------------------------------------------------------------------
    def start_training(self) -> None:
        """Print the model architecture (when a model was given) and "Starting training..."."""
        self._ph.check_open("start_training")
        if self._ph.phase != _NEW:
            self._ph.warn("start_training() was already called; this call is ignored",
                          stacklevel=3)
            return
        if self._model is not None:
            info = self._rec.model_summary(self._model, self._input_size, self.model_name)
            self._ph.say(f"Model Architecture:\n{info}\n")
        self._ph.say("Starting training...")
        self._rec.start(self.model_name, self.epochs, self.steps_per_epoch,
                        self.validation_steps, system=self._system)
        self._ph.phase = _IDLE

    def start_epoch(self, epoch: int) -> None:
        """Begin the training phase of ``epoch`` (1-based, above the previous epoch)."""
        self._ph.check_open("start_epoch")
        if self._ph.epoch >= self.epochs:
            raise RuntimeError(f"start_epoch({epoch!r}): all {self.epochs} epochs were started; "
                               "make a new TrainingSession to train longer")
        epoch = check_int(epoch, what="start_epoch()'s epoch", minimum=self._ph.epoch + 1,
                          maximum=self.epochs, hint="epochs are 1-based and increase; the last "
                          f"one started is {self._ph.epoch}")
        if self._ph.phase == _NEW:
            self._ph.warn(f"start_epoch({epoch}) before start_training(); starting training now",
                          stacklevel=3)
            self.start_training()
        self._ph.finish_open_phase(f"start_epoch({epoch})")
        if self._ph.phase == _TRAINED:  # the previous epoch was not validated
            self._ph.epoch_done()
        self._ph.epoch = epoch
        self._ph.epoch_t0 = self._rec.now()
        self._ph.epoch_base = self._ph.global_step
        self._ph.current = EpochResult(epoch, {})
        self._ph.open_phase(_TRAIN, f"Epoch {epoch}/{self.epochs} (Training)", self.steps_per_epoch)

    def update_training_progress(self, step: int, loss: SupportsFloat,
                                 accuracy: SupportsFloat | None = None,
                                 metrics: Mapping[str, SupportsFloat] | None = None, *,
                                 record: bool = True) -> None:
        """Show and record training step ``step`` (1..steps_per_epoch): the loss, the accuracy
        (a fraction, shown as %) and other metrics: numbers or one-element tensors.
        ``record=False`` only shows them: for a loop that records its steps itself through
        :attr:`accumulator` (``fit`` does, with every step's own values)."""
        ph = self._ph
        if ph.phase != _TRAIN:
            ph.wrong_phase("update_training_progress", "start_epoch(epoch)")
        if type(step) is not int or not ph.last < step <= self.steps_per_epoch:
            ph.bad_step(step, self.steps_per_epoch, "steps_per_epoch")
        floats = type(loss) is float and type(accuracy) in _PLAIN  # and so the row: no check
        if floats and (metrics is None or (type(metrics) is dict
                                           and self._known.issuperset(metrics))):
            if metrics:
                floats = False  # their values are checked by the accumulator or the bar
                row = ({"loss": loss, **metrics} if accuracy is None
                       else {"loss": loss, "accuracy": accuracy, **metrics})
            else:
                row = ({"loss": loss} if accuracy is None
                       else {"loss": loss, "accuracy": accuracy})
        else:
            floats = False
            row = self._values.row(loss, accuracy, metrics)
        if record and self._recording:  # the accumulator checks and converts each value
            times = self._times  # (all or nothing); the step path of SessionRecorder.add_step
            if self._inline and self._acc.step0 + len(times) == ph.epoch_base + step - 1:
                times.append(self._perf())
                # True: every value a plain number (keys were checked above): the bar needn't
                self._acc_log(row)
                floats = self._acc.plain
                if times[-1] >= self._rec.next_flush:  # SessionRecorder.flush_due, inlined
                    self._rec.flush()
            else:
                self._add_step(ph.epoch_base + step, row)
        if floats:
            ph.bar._update_checked(step, row)  # type: ignore[union-attr]
        else:
            ph.bar.update(step, row)  # type: ignore[union-attr]
        ph.last = step
        ph.last_row = row

    # --- the phases after a training step: the session's SessionPhases ----------------------
    def finish_training_epoch(self) -> None:
        """End the training phase: the final bar line; ``epoch/train_*`` recorded."""
        self._ph.finish_training_epoch()

    def start_validation(self) -> None:
        """Begin the validation phase of the current epoch."""
        self._ph.start_validation()

    def update_validation_progress(self, step: int, loss: SupportsFloat,
                                   accuracy: SupportsFloat | None = None,
                                   metrics: Mapping[str, SupportsFloat] | None = None) -> None:
        """Show validation step ``step`` (1..validation_steps); the last values are recorded
        as ``epoch/val_*`` when the phase finishes."""
        self._ph.update_validation_progress(step, loss, accuracy, metrics)

    def finish_validation_epoch(self) -> None:
        """End the validation phase: the final bar line; ``epoch/val_*`` recorded."""
        self._ph.finish_validation_epoch()

    def print_epoch_summary(self) -> None:
        """Print ``Epoch N/E Summary:`` with the Training and Validation lines."""
        self._ph.print_epoch_summary()

    @property
    def history(self) -> list[EpochResult]:
        """The epochs done: an :class:`EpochResult` each."""
        return self._ph.history

    @property
    def group(self) -> TrainGroup | None:
        """Under ``torchrun``: the :class:`~loopwise.distributed.group.TrainGroup` whose
        exchanges (every :attr:`~loopwise.distributed.group.TrainGroup.every` steps) reduce
        this session's values; None in one process."""
        return self._group

    @property
    def accumulator(self) -> StepAccumulator:
        """The session's step accumulator (the run's per-step values go through it)."""
        return self._rec.acc

    # --- closing and state --------------------------------------------------------------------
    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Finish an open phase (its steps stay recorded) and close the session's own run with
        ``status``; a given run is flushed, not closed. Idempotent."""
        if self._ph.closed:
            return
        self._ph.closed = True
        if self._group is not None and status != "finished":
            error = self._group.on_failure(error)  # no collective after a failure
        try:
            if self._ph.bar is not None:
                self._ph.close_bar()
            if self._ph.phase in (_TRAINED, _VAL):  # this epoch's training phase is complete
                self._ph.epoch_done(close_run=False)
        finally:
            if self.run is not None:  # the one end of a run (a given run: flushed)
                end_run(self.run, status=status, error=error, own=self._ph.own_run)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._ph.epoch, "global_step": self._ph.global_step,
                "history": [asdict(r) for r in self._ph.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after ``state``'s epoch: call before the first ``start_epoch``."""
        epoch = check_session_state(state, self.epochs, started=self._ph.phase not in (_NEW, _IDLE)
                                    or bool(self._ph.epoch))
        self._ph.epoch = epoch
        self._ph.global_step = self._ph.epoch_base = int(state["global_step"])
        self._ph.history = [EpochResult(**r) for r in state["history"]]
        self._rec.acc.restart_at(self._ph.global_step)

    def __enter__(self) -> TrainingSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        self.close(status, error=error)
