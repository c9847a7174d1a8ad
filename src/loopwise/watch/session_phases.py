"""The phases of a :class:`~loopwise.watch.session.TrainingSession` after a training step: the
end of the training phase, the validation phase, the epoch summary, and the transitions and
order checks they share; the session holds one and its step path reads the same state
(``session.py``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NoReturn, SupportsFloat, TextIO

from tqdm import tqdm

from loopwise.record.opening import end_run
from loopwise.record.run import Run
from loopwise.watch.progress import ProgressBar
from loopwise.watch.session_checks import IDLE as _IDLE
from loopwise.watch.session_checks import NEW as _NEW
from loopwise.watch.session_checks import TRAIN as _TRAIN
from loopwise.watch.session_checks import TRAINED as _TRAINED
from loopwise.watch.session_checks import VAL as _VAL
from loopwise.watch.session_checks import VALIDATED as _VALIDATED
from loopwise.watch.session_checks import WHEN, bad_step_error
from loopwise.watch.session_values import (
    EpochResult,
    SessionOrderWarning,
    SessionRecorder,
    StepValues,
    render_epoch_summary,
)


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
        self.phase = _NEW
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
        if self.phase in (_TRAINED, _VAL, _VALIDATED):
            self.warn(f"finish_training_epoch(): epoch {self.epoch}'s training is already "
                       "finished; this call is ignored")
            return
        if self.phase != _TRAIN:
            raise RuntimeError("finish_training_epoch() called before start_epoch(epoch); "
                               "call start_epoch(epoch) first")
        self.close_bar()
        self.global_step = self.epoch_base + self.last
        assert self.current is not None
        self.current.train = self.rec.resolved(self.last_row)
        self.current.train_steps = self.last
        self.rec.epoch_values(self.epoch, "train", self.current.train, self.global_step)
        self.phase = _TRAINED
        if self.validation_steps == 0:
            self.epoch_done()

    def start_validation(self) -> None:
        """Begin the validation phase of the current epoch."""
        self.check_open("start_validation")
        if self.validation_steps == 0:
            raise ValueError("start_validation() with validation_steps=0; make the session with "
                             "validation_steps > 0 to validate")
        if self.phase == _VAL:
            self.warn("start_validation(): validation is already running; this call is ignored")
            return
        if self.phase == _VALIDATED:
            raise RuntimeError(f"start_validation(): epoch {self.epoch} was already validated; "
                               "call start_epoch(next epoch) first")
        if self.phase in (_NEW, _IDLE):
            raise RuntimeError("start_validation() needs an epoch; call start_epoch(epoch) first")
        self.finish_open_phase("start_validation()")
        self.open_phase(_VAL, f"Epoch {self.epoch}/{self.epochs} (Validation)",
                         self.validation_steps)

    def update_validation_progress(self, step: int, loss: SupportsFloat,
                                   accuracy: SupportsFloat | None = None,
                                   metrics: Mapping[str, SupportsFloat] | None = None) -> None:
        """Show validation step ``step`` (1..validation_steps); the last values are recorded
        as ``epoch/val_*`` when the phase finishes."""
        if self.phase != _VAL:
            self.wrong_phase("update_validation_progress", "start_validation()")
        if type(step) is not int or not self.last < step <= self.validation_steps:
            self.bad_step(step, self.validation_steps, "validation_steps")
        row = self.values.row(loss, accuracy, metrics)
        self.last = step
        self.last_row = row
        self.bar.update(step, row)  # type: ignore[union-attr]

    def finish_validation_epoch(self) -> None:
        """End the validation phase: the final bar line; ``epoch/val_*`` recorded."""
        self.check_open("finish_validation_epoch")
        if self.phase == _VALIDATED:
            self.warn(f"finish_validation_epoch(): epoch {self.epoch}'s validation is already "
                       "finished; this call is ignored")
            return
        if self.phase != _VAL:
            raise RuntimeError("finish_validation_epoch() called before start_validation(); "
                               "call start_validation() first")
        self.close_bar()
        assert self.current is not None
        self.current.val = self.rec.resolved(self.last_row)
        self.current.val_steps = self.last
        self.rec.epoch_values(self.epoch, "val", self.current.val, self.global_step)
        self.phase = _VALIDATED
        self.epoch_done()

    def print_epoch_summary(self) -> None:
        """Print ``Epoch N/E Summary:`` with the Training and Validation lines."""
        self.check_open("print_epoch_summary")
        if self.phase in (_TRAIN, _VAL):
            self.finish_open_phase("print_epoch_summary()")
        if self.current is None or self.phase in (_NEW, _IDLE):
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
        if self.phase == _TRAIN:
            self.warn(f"{call} while epoch {self.epoch}'s training is open; finishing it now")
            self.finish_training_epoch()
        elif self.phase == _VAL:
            self.warn(f"{call} while epoch {self.epoch}'s validation is open; finishing it now")
            self.finish_validation_epoch()

    def epoch_done(self, *, close_run: bool = True) -> None:
        result = self.current
        if result is None or (self.history and self.history[-1] is result):
            return
        self.history.append(result)
        self.rec.epoch_values(result.epoch, "train", {"seconds": self.rec.now() - self.epoch_t0},
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

    def bad_step(self, step: object, total: int, what: str) -> NoReturn:
        raise bad_step_error(step, total, what, self.last)
