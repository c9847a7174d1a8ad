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
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from types import TracebackType
from typing import Any, NoReturn, SupportsFloat, TextIO

from torch import nn
from tqdm import tqdm

from loopwise.distributed.group import TrainGroup, train_group
from loopwise.distributed.local import quiet
from loopwise.record.opening import end_run, open_run
from loopwise.record.recorder import Recorder, check_exporters
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.utils.validate import check_int, check_key
from loopwise.watch.accumulator import StepAccumulator
from loopwise.watch.epoch_summary import EpochResult, render_epoch_summary
from loopwise.watch.hostcopy import MediaLog
from loopwise.watch.progress import ProgressBar
from loopwise.watch.session_recorder import SessionRecorder, StepValues
from loopwise.watch.system_run import start_rank_system

__all__ = ["EpochResult", "SessionOrderWarning", "TrainingSession"]

# the phases of a session, in order, and how an error names each
NEW, IDLE, TRAIN, TRAINED, VAL, VALIDATED = "new", "idle", "train", "trained", "val", "done"
WHEN = {NEW: "before start_training()", IDLE: "before start_epoch()", TRAIN: "during training",
        TRAINED: "after the training phase finished", VAL: "during validation",
        VALIDATED: "after validation finished"}

_PLAIN = (float, type(None))


class SessionOrderWarning(RuntimeWarning):
    """A TrainingSession method was called out of order; the session did the obvious thing."""


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
        if self._ph.phase != NEW:
            self._ph.warn("start_training() was already called; this call is ignored",
                          stacklevel=3)
            return
        if self._model is not None:
            info = self._rec.model_summary(self._model, self._input_size, self.model_name)
            self._ph.say(f"Model Architecture:\n{info}\n")
        self._ph.say("Starting training...")
        self._rec.start(self.model_name, self.epochs, self.steps_per_epoch,
                        self.validation_steps, system=self._system)
        self._ph.phase = IDLE

    def start_epoch(self, epoch: int) -> None:
        """Begin the training phase of ``epoch`` (1-based, above the previous epoch)."""
        self._ph.check_open("start_epoch")
        if self._ph.epoch >= self.epochs:
            raise RuntimeError(f"start_epoch({epoch!r}): all {self.epochs} epochs were started; "
                               "make a new TrainingSession to train longer")
        epoch = check_int(epoch, what="start_epoch()'s epoch", minimum=self._ph.epoch + 1,
                          maximum=self.epochs, hint="epochs are 1-based and increase; the last "
                          f"one started is {self._ph.epoch}")
        if self._ph.phase == NEW:
            self._ph.warn(f"start_epoch({epoch}) before start_training(); starting training now",
                          stacklevel=3)
            self.start_training()
        self._ph.finish_open_phase(f"start_epoch({epoch})")
        if self._ph.phase == TRAINED:  # the previous epoch was not validated
            self._ph.epoch_done()
        self._ph.epoch = epoch
        self._ph.epoch_t0 = self._rec.now()
        self._ph.epoch_base = self._ph.global_step
        self._ph.current = EpochResult(epoch, {})
        self._ph.open_phase(TRAIN, f"Epoch {epoch}/{self.epochs} (Training)", self.steps_per_epoch)

    def update_training_progress(self, step: int, loss: SupportsFloat,
                                 accuracy: SupportsFloat | None = None,
                                 metrics: Mapping[str, SupportsFloat] | None = None, *,
                                 record: bool = True) -> None:
        """Show and record training step ``step`` (1..steps_per_epoch): the loss, the accuracy
        (a fraction, shown as %) and other metrics: numbers or one-element tensors.
        ``record=False`` only shows them: for a loop that records its steps itself through
        :attr:`accumulator` (``fit`` does, with every step's own values)."""
        ph = self._ph
        if ph.phase != TRAIN:
            ph.wrong_phase("update_training_progress", "start_epoch(epoch)")
        if type(step) is not int or not ph.last < step <= self.steps_per_epoch:
            step = ph.checked_step(step, self.steps_per_epoch, "steps_per_epoch")
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
            if self._ph.phase in (TRAINED, VAL):  # this epoch's training phase is complete
                self._ph.epoch_done(close_run=False)
        finally:
            if self.run is not None:  # the one end of a run (a given run: flushed)
                end_run(self.run, status=status, error=error, own=self._ph.own_run)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._ph.epoch, "global_step": self._ph.global_step,
                "history": [asdict(r) for r in self._ph.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after ``state``'s epoch: call before the first ``start_epoch``."""
        epoch = check_session_state(state, self.epochs, started=self._ph.phase not in (NEW, IDLE)
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


class SessionPhases:
    """The phases of a TrainingSession, which holds one (composition): the phase state (the
    phase, the epoch, its bar, the last step and values, the epochs done) and the methods that
    move it. The session's step path reads and advances the same state."""

    def __init__(self, *, model_name: str, epochs: int, validation_steps: int,
                 run: Run | None, own_run: bool, rec: SessionRecorder, file: TextIO,
                 clock: Any) -> None:
        self.model_name = model_name
        self.epochs = epochs
        self.validation_steps = validation_steps
        self.run = run
        self.own_run = own_run  # the session made the run: closed after the last epoch
        self.rec = rec
        self.values: StepValues = rec.values
        self.file = file
        self.clock = clock
        self.history: list[EpochResult] = []
        self.phase = NEW
        self.closed = False
        self.epoch = 0  # the epoch started last
        self.epoch_t0 = 0.0
        self.global_step = run.global_step if run is not None else 0
        self.epoch_base = self.global_step
        self.bar: ProgressBar | None = None
        self.last = 0  # last step of the open phase
        self.last_row: dict[str, Any] | None = None
        self.current: EpochResult | None = None

    def finish_training_epoch(self) -> None:
        """End the training phase: the final bar line; ``epoch/train_*`` recorded."""
        self.check_open("finish_training_epoch")
        if self.phase in (TRAINED, VAL, VALIDATED):
            self.warn(f"finish_training_epoch(): epoch {self.epoch}'s training is already "
                       "finished; this call is ignored")
            return
        if self.phase != TRAIN:
            raise RuntimeError("finish_training_epoch() called before start_epoch(epoch); "
                               "call start_epoch(epoch) first")
        self.close_bar()
        self.global_step = self.epoch_base + self.last
        assert self.current is not None
        self.current.train = self.rec.resolved(self.last_row)
        self.current.train_steps = self.last
        self.phase = TRAINED
        if self.validation_steps == 0:  # the epoch ends here: its values and seconds at once
            self.epoch_done(train=self.current.train)
            return
        self.rec.epoch_values(self.epoch, "train", self.current.train, self.global_step)

    def start_validation(self) -> None:
        """Begin the validation phase of the current epoch."""
        self.check_open("start_validation")
        if self.validation_steps == 0:
            raise ValueError("start_validation() with validation_steps=0; make the session with "
                             "validation_steps > 0 to validate")
        if self.phase == VAL:
            self.warn("start_validation(): validation is already running; this call is ignored")
            return
        if self.phase == VALIDATED:
            raise RuntimeError(f"start_validation(): epoch {self.epoch} was already validated; "
                               "call start_epoch(next epoch) first")
        if self.phase in (NEW, IDLE):
            raise RuntimeError("start_validation() needs an epoch; call start_epoch(epoch) first")
        self.finish_open_phase("start_validation()")
        self.open_phase(VAL, f"Epoch {self.epoch}/{self.epochs} (Validation)",
                         self.validation_steps)

    def update_validation_progress(self, step: int, loss: SupportsFloat,
                                   accuracy: SupportsFloat | None = None,
                                   metrics: Mapping[str, SupportsFloat] | None = None) -> None:
        """Show validation step ``step`` (1..validation_steps); the last values are recorded
        as ``epoch/val_*`` when the phase finishes."""
        if self.phase != VAL:
            self.wrong_phase("update_validation_progress", "start_validation()")
        if type(step) is not int or not self.last < step <= self.validation_steps:
            step = self.checked_step(step, self.validation_steps, "validation_steps")
        row = self.values.row(loss, accuracy, metrics)
        self.last = step
        self.last_row = row
        self.bar.update(step, row)  # type: ignore[union-attr]

    def finish_validation_epoch(self) -> None:
        """End the validation phase: the final bar line; ``epoch/val_*`` recorded."""
        self.check_open("finish_validation_epoch")
        if self.phase == VALIDATED:
            self.warn(f"finish_validation_epoch(): epoch {self.epoch}'s validation is already "
                       "finished; this call is ignored")
            return
        if self.phase != VAL:
            raise RuntimeError("finish_validation_epoch() called before start_validation(); "
                               "call start_validation() first")
        self.close_bar()
        assert self.current is not None
        self.current.val = self.rec.resolved(self.last_row)
        self.current.val_steps = self.last
        self.rec.epoch_values(self.epoch, "val", self.current.val, self.global_step)
        self.phase = VALIDATED
        self.epoch_done()

    def print_epoch_summary(self) -> None:
        """Print ``Epoch N/E Summary:`` with the Training and Validation lines."""
        self.check_open("print_epoch_summary")
        if self.phase in (TRAIN, VAL):
            self.finish_open_phase("print_epoch_summary()")
        if self.current is None or self.phase in (NEW, IDLE):
            raise RuntimeError("print_epoch_summary() before any epoch; call it after "
                               "finish_training_epoch() or finish_validation_epoch()")
        self.say("\n" + render_epoch_summary(self.current, self.epochs) + "\n")
        if self.current.epoch == self.epochs:  # the end of training: statistics of the run
            table = self.rec.stats_table()
            if table is not None:
                self.say(table + "\n")

    def open_phase(self, phase: str, desc: str, total: int) -> None:
        self.last = 0
        self.last_row = None
        self.bar = ProgressBar(desc, total, file=self.file, clock=self.clock)
        self.phase = phase

    def close_bar(self) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.finish()
        self.rec.flush(*([self.last_row] if self.last_row else []))

    def finish_open_phase(self, call: str) -> None:
        if self.phase == TRAIN:
            self.warn(f"{call} while epoch {self.epoch}'s training is open; finishing it now")
            self.finish_training_epoch()
        elif self.phase == VAL:
            self.warn(f"{call} while epoch {self.epoch}'s validation is open; finishing it now")
            self.finish_validation_epoch()

    def epoch_done(self, *, close_run: bool = True,
                   train: dict[str, float] | None = None) -> None:
        """The epoch's end: its seconds (with ``train``, the training values not yet recorded:
        one ``log_epoch``, one JSON-log line), the ``epoch_end`` event, the end of the run."""
        result = self.current
        if result is None or (self.history and self.history[-1] is result):
            return
        self.history.append(result)
        self.rec.epoch_values(result.epoch, "train",
                              {**(train or {}), "seconds": self.rec.now() - self.epoch_t0},
                              self.global_step)
        self.rec.epoch_end(result, self.epochs)
        if close_run and result.epoch == self.epochs and self.own_run and self.run is not None:
            end_run(self.run, status="finished")  # the one end of a run

    def say(self, text: str) -> None:
        tqdm.write(text, file=self.file)

    def warn(self, message: str, *, stacklevel: int = 4) -> None:
        """A call out of order: a :class:`SessionOrderWarning` pointing at the user's call
        (``stacklevel``: 4 from a phase method the session delegates to) and an event."""
        warnings.warn(message, SessionOrderWarning, stacklevel=stacklevel)
        self.rec.event("session_order", message, level="warning")

    def check_open(self, call: str) -> None:
        if self.closed:
            raise RuntimeError(f"{call}(): this TrainingSession is closed; make a new one")

    def wrong_phase(self, call: str, first: str) -> NoReturn:
        self.check_open(call)
        raise RuntimeError(f"{call}() called {WHEN[self.phase]}; call {first} first")

    def checked_step(self, step: object, total: int, what: str) -> int:
        """The slow path of a phase's step test: a NumPy int is taken as the int it is; a step
        that is not an int, or not after the phase's last one, raises."""
        number = check_int(step, what="step", minimum=None,
                           hint="the 1-based step of the phase")
        if self.last < number <= total:
            return number
        raise bad_step_error(number, total, what, self.last)


# --- argument checks (TrainingSession's, each error saying what to do) ----------------------
def check_session_args(model_name: Any, epochs: Any, steps_per_epoch: Any,
                       validation_steps: Any, model: Any, input_size: Any, run: Any,
                       record: Any, file: Any, clock: Any, exporters: Any
                       ) -> tuple[int, int, int]:
    """Refuse bad TrainingSession arguments before anything is made; ``epochs``,
    ``steps_per_epoch`` and ``validation_steps`` come back as ints."""
    check_key(model_name, what="model_name")
    counts = (check_int(epochs, what="epochs", minimum=1, hint="epochs to train"),
              check_int(steps_per_epoch, what="steps_per_epoch", minimum=1,
                        hint="batches in an epoch: the loader's len()"),
              check_int(validation_steps, what="validation_steps", minimum=0,
                        hint="batches of validation; 0: none"))
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if input_size is not None and model is None:
        raise ValueError("input_size needs model=: it is the input of the model's summary")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
    if run is not None and not record:
        raise ValueError("run= was given with record=False; pass one or the other")
    if run is not None and run.closed:
        raise ValueError(f"run {run.name!r} is already closed; pass an open run")
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
    check_exporters(exporters)
    return counts


def bad_step_error(step: int, total: int, what: str, last: int) -> ValueError:
    """The error for a step number that is not the phase's next one."""
    if step > total:
        return ValueError(f"step {step} is beyond {what}={total}; pass the loader's len() as "
                          f"{what}, or stop the phase at step {total}")
    if step < 1:
        return ValueError(f"steps are 1-based: the first step is 1, got {step}")
    return ValueError(f"step {step} is not after the previous step {last}; the steps of a "
                      "phase must increase")


def check_session_state(state: Any, epochs: int, *, started: bool) -> int:
    """The epoch of a TrainingSession ``state`` to continue after (checked)."""
    missing = {"epoch", "global_step", "history"} - set(state)
    if missing:
        raise KeyError(f"TrainingSession state is missing {sorted(missing)}")
    if started:
        raise RuntimeError("load_state_dict() must come before the first start_epoch()")
    return check_int(state["epoch"], what="the state's epoch", minimum=0, maximum=epochs,
                     hint=f"this session has {epochs} epochs")
