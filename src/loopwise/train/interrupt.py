"""Graceful Ctrl-C for a training loop.

Inside ``with GracefulInterrupt() as interrupt:`` the first SIGINT only sets
``interrupt.requested`` (and prints one line): the loop finishes its current step, saves a
checkpoint, marks the run ``interrupted`` and raises ``KeyboardInterrupt`` itself. A second
SIGINT raises ``KeyboardInterrupt`` at once, wherever the loop is. The previous handler is put
back on exit. Off the main thread (where Python cannot install signal handlers) the guard is
inert and Ctrl-C behaves as usual.

``KeyboardInterrupt`` is re-raised, never turned into ``sys.exit``, so notebooks and callers
keep control.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, TextIO


class _SigintSwap:
    """The one install/restore of a SIGINT handler for the guards below: ``install`` puts
    ``handler`` in place (on the main thread only; elsewhere Python cannot, and the guard stays
    inert), ``restore`` puts the previous handler back."""

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self._previous: Any = None
        self.active = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
            self.active = True

    def restore(self) -> None:
        if self.active:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGINT, previous)
            self.active = False


def _say(stream: TextIO | None, text: str) -> None:
    """One line on ``stream`` (stderr by default); a closed or broken stream must not stop the
    save or the close, so its error is dropped."""
    out = stream if stream is not None else sys.stderr
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        pass


_FIRST = ("\nCtrl-C: finishing the current step and saving a checkpoint "
          "(press Ctrl-C again to abort at once)\n")


class GracefulInterrupt:
    """Turns the first SIGINT into a request flag; the second one interrupts immediately."""

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.requested = False
        self._swap = _SigintSwap(self._handler)

    @property
    def active(self) -> bool:
        """Whether the handler is installed (False off the main thread)."""
        return self._swap.active

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        _say(self._stream, _FIRST)

    def __enter__(self) -> GracefulInterrupt:
        self._swap.install()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._swap.restore()


class HeldInterrupt:
    """Inside ``with HeldInterrupt(status):`` (the close of a run whose ending is decided:
    the results, the report, the exporters' drain) SIGINT is held: one line says that the run
    is closing as ``status``, and nothing is raised, so every file and mirror says the same
    status (a Ctrl-C there used to leave ``run.json`` ``interrupted``, ``results.json``
    ``finished`` and MLflow ``FINISHED``). Off the main thread it is inert."""

    def __init__(self, status: str, *, stream: TextIO | None = None) -> None:
        self.status = status
        self._stream = stream
        self.held = 0
        self._swap = _SigintSwap(self._handler)

    @property
    def active(self) -> bool:
        """Whether the handler is installed (False off the main thread)."""
        return self._swap.active

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.held += 1
        if self.held > 1:
            return
        _say(self._stream, f"\nCtrl-C: training is over; the run is closing as {self.status} "
                           "(its exporters deliver what is left, within their close_timeout)\n")

    def __enter__(self) -> HeldInterrupt:
        self._swap.install()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._swap.restore()
