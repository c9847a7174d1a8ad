"""The phases of a :class:`~loopwise.watch.session.TrainingSession` after a training step: the
end of the training phase, the validation phase, the epoch summary, and the transitions and
order checks they share (the step path and the session's state live in ``session.py``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NoReturn, SupportsFloat, TextIO

from tqdm import tqdm

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
    """The phase methods of TrainingSession (its base class): the state they use is set by
    ``TrainingSession.__init__``."""

    model_name: str
    epochs: int
    steps_per_epoch: int
    validation_steps: int
    run: Run | None
    history: list[EpochResult]
    _file: TextIO
    _clock: Any
    _own_run: bool
    _phase: str
    _closed: bool
    _epoch: int
    _epoch_t0: float
    _epoch_base: int
    _global_step: int
    _bar: ProgressBar | None
    _last: int
    _last_row: dict[str, Any] | None
    _current: EpochResult | None
    _rec: SessionRecorder
    _values: StepValues

    def finish_training_epoch(self) -> None:
        """End the training phase: the final bar line; ``epoch/train_*`` recorded."""
        self._check_open("finish_training_epoch")
        if self._phase in (_TRAINED, _VAL, _VALIDATED):
            self._warn(f"finish_training_epoch(): epoch {self._epoch}'s training is already "
                       "finished; this call is ignored")
            return
        if self._phase != _TRAIN:
            raise RuntimeError("finish_training_epoch() called before start_epoch(epoch); "
                               "call start_epoch(epoch) first")
        self._close_bar()
        self._global_step = self._epoch_base + self._last
        assert self._current is not None
        self._current.train = self._rec.resolved(self._last_row)
        self._current.train_steps = self._last
        self._rec.epoch_values(self._epoch, "train", self._current.train, self._global_step)
        self._phase = _TRAINED
        if self.validation_steps == 0:
            self._epoch_done()

    def start_validation(self) -> None:
        """Begin the validation phase of the current epoch."""
        self._check_open("start_validation")
        if self.validation_steps == 0:
            raise ValueError("start_validation() with validation_steps=0; make the session with "
                             "validation_steps > 0 to validate")
        if self._phase == _VAL:
            self._warn("start_validation(): validation is already running; this call is ignored")
            return
        if self._phase == _VALIDATED:
            raise RuntimeError(f"start_validation(): epoch {self._epoch} was already validated; "
                               "call start_epoch(next epoch) first")
        if self._phase in (_NEW, _IDLE):
            raise RuntimeError("start_validation() needs an epoch; call start_epoch(epoch) first")
        self._finish_open_phase("start_validation()")
        self._open_phase(_VAL, f"Epoch {self._epoch}/{self.epochs} (Validation)",
                         self.validation_steps)

    def update_validation_progress(self, step: int, loss: SupportsFloat,
                                   accuracy: SupportsFloat | None = None,
                                   metrics: Mapping[str, SupportsFloat] | None = None) -> None:
        """Show validation step ``step`` (1..validation_steps); the last values are recorded
        as ``epoch/val_*`` when the phase finishes."""
        if self._phase != _VAL:
            self._wrong_phase("update_validation_progress", "start_validation()")
        if type(step) is not int or not self._last < step <= self.validation_steps:
            self._bad_step(step, self.validation_steps, "validation_steps")
        row = self._values.row(loss, accuracy, metrics)
        self._last = step
        self._last_row = row
        self._bar.update(step, row)  # type: ignore[union-attr]

    def finish_validation_epoch(self) -> None:
        """End the validation phase: the final bar line; ``epoch/val_*`` recorded."""
        self._check_open("finish_validation_epoch")
        if self._phase == _VALIDATED:
            self._warn(f"finish_validation_epoch(): epoch {self._epoch}'s validation is already "
                       "finished; this call is ignored")
            return
        if self._phase != _VAL:
            raise RuntimeError("finish_validation_epoch() called before start_validation(); "
                               "call start_validation() first")
        self._close_bar()
        assert self._current is not None
        self._current.val = self._rec.resolved(self._last_row)
        self._current.val_steps = self._last
        self._rec.epoch_values(self._epoch, "val", self._current.val, self._global_step)
        self._phase = _VALIDATED
        self._epoch_done()

    def print_epoch_summary(self) -> None:
        """Print ``Epoch N/E Summary:`` with the Training and Validation lines."""
        self._check_open("print_epoch_summary")
        if self._phase in (_TRAIN, _VAL):
            self._finish_open_phase("print_epoch_summary()")
        if self._current is None or self._phase in (_NEW, _IDLE):
            raise RuntimeError("print_epoch_summary() before any epoch; call it after "
                               "finish_training_epoch() or finish_validation_epoch()")
        self._print("\n" + render_epoch_summary(self._current, self.epochs) + "\n")
        if self._current.epoch == self.epochs:  # the end of training: statistics of the run
            table = self._rec.stats_table()
            if table is not None:
                self._print(table + "\n")

    def _open_phase(self, phase: str, desc: str, total: int) -> None:
        self._last = 0
        self._last_row = None
        self._bar = ProgressBar(desc, total, file=self._file, clock=self._clock)
        self._phase = phase

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.finish()
        self._rec.flush(*([self._last_row] if self._last_row else []))

    def _finish_open_phase(self, call: str) -> None:
        if self._phase == _TRAIN:
            self._warn(f"{call} while epoch {self._epoch}'s training is open; finishing it now")
            self.finish_training_epoch()
        elif self._phase == _VAL:
            self._warn(f"{call} while epoch {self._epoch}'s validation is open; finishing it now")
            self.finish_validation_epoch()

    def _epoch_done(self, *, close_run: bool = True) -> None:
        result = self._current
        if result is None or (self.history and self.history[-1] is result):
            return
        self.history.append(result)
        self._rec.epoch_values(result.epoch, "train", {"seconds": self._rec.now() - self._epoch_t0},
                               self._global_step)
        self._rec.epoch_end(result, self.epochs)
        if close_run and result.epoch == self.epochs and self._own_run and self.run is not None:
            self.run.close("finished")

    def _print(self, text: str) -> None:
        tqdm.write(text, file=self._file)

    def _warn(self, message: str) -> None:
        warnings.warn(message, SessionOrderWarning, stacklevel=3)
        self._rec.event("session_order", message, level="warning")

    def _check_open(self, call: str) -> None:
        if self._closed:
            raise RuntimeError(f"{call}(): this TrainingSession is closed; make a new one")

    def _wrong_phase(self, call: str, first: str) -> NoReturn:
        self._check_open(call)
        raise RuntimeError(f"{call}() called {WHEN[self._phase]}; call {first} first")

    def _bad_step(self, step: object, total: int, what: str) -> NoReturn:
        raise bad_step_error(step, total, what, self._last)
