"""PyTorch-style progress bar on top of tqdm (``loopwise.ProgressBar``).

::

    Epoch 1/10 (Training): 100%|███| 100/100 [00:15<00:00, 6.45batch/s, loss=2.31, accuracy=12.50%]

The line is made by :func:`render_line`, a pure function of the bar's state built on
``tqdm.format_meter``. On a terminal, a ``tqdm`` instance puts it on the screen (carriage
returns, positions of several bars, clearing, tqdm's write lock). Anywhere else (CI logs, files,
pipes) whole lines are written: one each time progress crosses another 10 % or ``mininterval``
seconds (5 s) have passed, and the final line, never carriage returns.

``update()`` only stores the step and the metrics object and reads the clock unless a redraw is
due; values are converted and formatted when a line is drawn (so a 0-dim CUDA tensor is only
synced then). Metric names containing "acc" are shown as percentages of a fraction (0.125 ->
``12.50%``), others with 4 significant digits.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.watch.progress_render import BarStyle, Metrics, render_line

TERMINAL_INTERVAL = 0.1  # seconds between redraws on a terminal
FILE_INTERVAL = 5.0  # seconds between lines when not a terminal
FILE_FRACTION = 10  # ... or one line each time another 1/10 of the total is done


class _TerminalLine(tqdm):  # type: ignore[type-arg]
    """A tqdm bar that shows the line it is given: tqdm does positions, clearing and locking.
    The first line is rendered when tqdm first draws, once it knows the terminal's width."""

    monitor_interval = 0  # no tqdm monitor thread for these bars

    def __init__(self, first_line: Callable[[int | None], str], **kwargs: Any) -> None:
        self.line: str | None = None
        self._first_line = first_line
        super().__init__(**kwargs)

    def __str__(self) -> str:
        if self.line is None:
            self.line = self._first_line(self.ncols)
        return self.line


def _supports_unicode(file: Any) -> bool:
    encoding = getattr(file, "encoding", None)
    if not isinstance(encoding, str):
        return True  # text buffers (io.StringIO) take any character
    try:
        "█▏".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class ProgressBar:
    """``ProgressBar(desc, total)``; ``update(step, metrics)``; ``finish()``; a context manager.

    ``step`` is the number of steps done (0..total). ``width`` is the bar's width in
    characters; ``file`` defaults to ``sys.stderr``; ``clock`` (seconds, monotonic) is injectable
    for tests. ``mininterval`` is the least time between redraws (0.1 s on a terminal, 5 s
    otherwise). On a terminal several bars at once each keep their line (``position``, chosen
    by tqdm when None); ``leave=False`` clears the line at the end (use it for nested bars).

    Thread-safe: updates may come from several threads; a redraw holds the bar's lock and tqdm's
    write lock, so lines never interleave. ``update()`` after ``finish()`` is an error;
    ``finish()`` twice is a no-op.
    """

    def __init__(
        self,
        desc: str,
        total: int,
        *,
        width: int = 70,
        show_rate: bool = True,
        show_eta: bool = True,
        file: TextIO | None = None,
        clock: Callable[[], float] | None = None,
        mininterval: float | None = None,
        position: int | None = None,
        leave: bool = True,
    ) -> None:
        if not isinstance(desc, str):
            raise TypeError(f"desc must be a string, got {type(desc).__name__}")
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise ValueError(f"total must be an int >= 1 (the number of steps), got {total!r}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be an int >= 1 (characters of bar), got {width!r}")
        for flag, value in (("show_rate", show_rate), ("show_eta", show_eta), ("leave", leave)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        if mininterval is not None and (
            not isinstance(mininterval, (int, float)) or not mininterval >= 0
        ):
            raise ValueError(f"mininterval must be a number of seconds >= 0, got {mininterval!r}")
        if position is not None and (not isinstance(position, int) or position < 0):
            raise ValueError(f"position must be an int >= 0 or None, got {position!r}")
        stream: TextIO = file if file is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False
        self._file = stream
        self._desc = desc
        self._total = total
        self._style = BarStyle(width, show_rate, show_eta, ascii=not _supports_unicode(stream))
        self._clock: Callable[[], float] = clock or time.monotonic
        default = TERMINAL_INTERVAL if self._tty else FILE_INTERVAL
        self._interval = float(default if mininterval is None else mininterval)
        self._lock = threading.Lock()
        self._n = 0
        self._metrics: Metrics | None = None
        self._finished = False
        self._last_line = ""
        self._drawn: tuple[int, int] | None = None  # (n, id(metrics)) of the last line written
        self._start = self._clock()
        self._next_time = self._start + self._interval
        self._next_step = self._boundary_after(0)
        self._display: _TerminalLine | None = None
        if self._tty:
            _write_lock()  # make the shared write lock on tqdm itself, not on the subclass
            self._display = _TerminalLine(
                lambda cols: self._render(self._start, cols),
                total=total,
                file=stream,
                leave=leave,
                position=position,
            )
            self._last_line = str(self._display)

    # --- the per-step path -------------------------------------------------------------------

    def update(self, step: int, metrics: Metrics | None = None) -> None:
        """Set the number of steps done and, optionally, the metrics shown after the bar."""
        if type(step) is not int:
            step = _as_step(step)
        if 0 <= step < self._next_step and self._clock() < self._next_time:
            self._n = step
            if metrics is not None:
                self._metrics = metrics
            return
        self._update_slow(step, metrics)

    def _update_slow(self, step: int, metrics: Metrics | None) -> None:
        if self._finished:
            raise RuntimeError(f"ProgressBar {self._desc!r} is finished; make a new bar")
        if not 0 <= step <= self._total:
            raise ValueError(
                f"step must be between 0 and total={self._total} for ProgressBar {self._desc!r}, "
                f"got {step}"
            )
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
            )
        with self._lock:
            self._n = step
            if metrics is not None:
                self._metrics = metrics
            now = self._clock()
            if step < self._next_step and now < self._next_time:
                return  # another thread drew meanwhile
            self._draw(now)

    # --- drawing -----------------------------------------------------------------------------

    def _boundary_after(self, n: int) -> int:
        """The next step that forces a line: the total on a terminal, the next 10 % otherwise;
        ``total + 1`` (never reached) when there is none."""
        if self._tty:
            return self._total if n < self._total else self._total + 1
        for k in range(1, FILE_FRACTION + 1):
            b = math.ceil(k * self._total / FILE_FRACTION)
            if b > n:
                return b
        return self._total + 1

    def _render(self, now: float, ncols: int | None) -> str:
        return render_line(
            self._desc,
            self._n,
            self._total,
            now - self._start,
            self._metrics,
            self._style,
            ncols=ncols or None,
        )

    def _ncols(self) -> int | None:
        return self._display.ncols if self._display is not None else None

    def _draw(self, now: float) -> None:
        """Called with the bar's lock held."""
        line = self._render(now, self._ncols())
        self._next_time = now + self._interval
        self._next_step = self._boundary_after(self._n)
        if line == self._last_line:
            return
        self._last_line = line
        if self._display is not None:
            self._display.line = line
            self._display.refresh()  # takes tqdm's write lock
        else:
            self._write_line(line)

    def _write_line(self, line: str) -> None:
        self._drawn = (self._n, id(self._metrics))
        with _write_lock():
            self._file.write(line + "\n")
            flush = getattr(self._file, "flush", None)
            if callable(flush):
                flush()

    def finish(self) -> None:
        """Draw the final line (on a terminal: leave it, or clear it with ``leave=False``)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._next_step = -1  # every later update() takes the slow path and raises
            line = self._render(self._clock(), self._ncols())
            if self._display is not None:
                self._display.line = line
                self._display.close()
            elif self._drawn != (self._n, id(self._metrics)):
                self._write_line(line)
            self._last_line = line

    # --- state and properties ------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Steps done so far."""
        return self._n

    @property
    def total(self) -> int:
        return self._total

    @property
    def desc(self) -> str:
        return self._desc

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def is_terminal(self) -> bool:
        """True when drawing in place on a terminal, False when writing whole lines."""
        return self._tty

    @property
    def position(self) -> int:
        """The bar's line on a terminal (0 = first); 0 when not a terminal."""
        return abs(int(self._display.pos)) if self._display is not None else 0

    @property
    def last_line(self) -> str:
        """The last line drawn (without carriage returns or cursor moves)."""
        return self._last_line

    def state_dict(self) -> dict[str, Any]:
        return {"n": self._n, "total": self._total, "elapsed": self._clock() - self._start}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved state: same total; steps done and elapsed time restored."""
        missing = {"n", "total", "elapsed"} - set(state)
        if missing:
            raise KeyError(f"ProgressBar state is missing {sorted(missing)}")
        if state["total"] != self._total:
            raise ValueError(f"state is for total={state['total']}, this bar has {self._total}")
        with self._lock:
            self._n = _as_step(state["n"])
            self._start = self._clock() - float(state["elapsed"])
            self._next_step = self._boundary_after(self._n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def __repr__(self) -> str:
        return f"ProgressBar({self._desc!r}, total={self._total}, n={self._n})"


def _write_lock() -> Any:
    """tqdm's process-wide write lock (shared with every tqdm bar)."""
    return tqdm.get_lock()  # type: ignore[no-untyped-call]


def _as_step(step: Any) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise TypeError(f"step must be an int (steps done), got {type(step).__name__}")
    return int(step.__index__())
