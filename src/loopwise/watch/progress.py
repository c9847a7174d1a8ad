"""PyTorch-style progress bar on top of tqdm (``loopwise.ProgressBar``)::

    Epoch 1/10: 100%|███| 100/100 [00:15<00:00, 6.45batch/s, loss=2.3089, accuracy=12.50%]

The line is :func:`~loopwise.watch.bar_line.render_line` of a ``BarState``; values follow
:mod:`loopwise.watch.display`. On a terminal a ``tqdm`` instance draws it in place; elsewhere
(CI logs, files) whole lines are written, one per 10 % (at most one a second) or per
``mininterval`` (5 s), and the last.
``update()`` checks its arguments by type (no tensor is read), stores them and reads the clock
unless a redraw is due; values are converted when a line is drawn.
"""

from __future__ import annotations

import math
import numbers
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.utils.text import printable
from loopwise.utils.validate import (
    check_bool,
    check_count,
    check_int,
    check_key,
    check_non_negative,
    check_optional_int,
)
from loopwise.watch.bar_line import BarState, BarStyle, Metrics, render_line

TERMINAL_INTERVAL = 0.1  # seconds between redraws on a terminal
FILE_INTERVAL = 5.0  # seconds between lines when not a terminal
FILE_FRACTION = 10  # ... or one line each time another 1/10 of the total is done,
FILE_FLOOR = 1.0  # ... at most one a second (a phase under a second writes only its last line)
NEVER = sys.maxsize  # a step no bar reaches


class ProgressBar:
    """``ProgressBar(desc, total)``; ``update(step, metrics)`` or ``advance(n, metrics)``;
    ``finish()``; a context manager. See docs/progress.md.

    ``total=None`` is an unknown length (count and rate, no percentage or ETA). ``width`` is
    the bar's width in characters; ``file`` defaults to ``sys.stderr``; ``clock`` (seconds,
    monotonic) is injectable. ``mininterval`` is the least time between redraws (0.1 s on a
    terminal, 5 s otherwise). ``line_gap``: off a terminal, the least seconds between the last
    line and one written because another tenth is done (1 s, or ``mininterval`` if smaller).
    ``position`` and ``leave`` as in tqdm; ``disable=True`` prints no bar (arguments are still
    checked).
    """

    def __init__(self, desc: str, total: int | None, *, width: int = 70,
                 show_rate: bool = True, show_eta: bool = True, file: TextIO | None = None,
                 clock: Callable[[], float] | None = None, mininterval: float | None = None,
                 position: int | None = None, leave: bool = True, disable: bool = False,
                 line_gap: float | None = None) -> None:
        total, width = check_options(
            desc=desc, total=total, width=width, show_rate=show_rate, show_eta=show_eta,
            leave=leave, disable=disable, file=file, clock=clock, mininterval=mininterval,
            position=position, line_gap=line_gap)
        stream: TextIO = file if file is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False
        self._disabled = disable
        self._file = stream
        self._desc = desc
        self._total = total
        self._style = BarStyle(width, show_rate, show_eta, ascii=not supports_unicode(stream))
        self._clock: Callable[[], float] = clock or time.monotonic
        default = TERMINAL_INTERVAL if self._tty else FILE_INTERVAL
        self._interval = float(default if mininterval is None else mininterval)
        if disable:
            self._interval = math.inf
        self._lock = threading.Lock()
        self._n = 0
        self._metrics: Metrics | None = None
        self._note = ""
        self._known: set[str] = set()  # metric names already checked
        self._finished = False
        self._last_line = ""
        self._drawn: tuple[int, int, str] | None = None  # (n, id(metrics), note) last written
        self._start = self._clock()
        self._next_time = self._start + self._interval
        # off a terminal, a tenth's line waits until then (a second after the last line)
        self._floor = (min(FILE_FLOOR, self._interval) if line_gap is None
                       else float(line_gap))
        self._next_tenth_time = self._start + self._floor
        self._next_step = self._boundary_after(0)
        self._display: TerminalLine | None = None
        if self._tty and not disable:
            write_lock()  # make the shared write lock on tqdm itself, not on the subclass
            self._display = TerminalLine(
                lambda cols: self._render(self._start, cols),
                total=total, file=stream, leave=leave, position=position,
            )
            self._last_line = str(self._display)

    def update(self, step: int, metrics: Metrics | None = None) -> None:
        """Set the number of steps done and, optionally, the metrics shown after the bar."""
        if type(step) is not int:
            step = check_count(step, what="step", hint="steps done")
        if metrics is not None:  # checked at the call (types only); inlined: the hot path
            if type(metrics) is not dict:
                check_mapping(metrics)
            known = self._known
            for key, value in metrics.items():
                if type(value) is not float or key not in known:
                    check_metric(key, value, known)
        self._update_checked(step, metrics)

    def _update_checked(self, step: int, metrics: Metrics | None) -> None:
        """:meth:`update` after its argument checks (TrainingSession calls it with a row its
        accumulator has just checked)."""
        if 0 <= step < self._next_step and self._clock() < self._next_time:
            self._n = step
            if metrics is not None:
                self._metrics = metrics
            return
        with self._lock:
            self._check_open()
            if step < 0 or (self._total is not None and step > self._total):
                allowed = ">= 0" if self._total is None else f"between 0 and total={self._total}"
                raise ValueError(
                    f"step must be {allowed} for ProgressBar {self._desc!r}, got {step}")
            self._set(step, metrics)

    def advance(self, n: int = 1, metrics: Metrics | None = None) -> None:
        """Add ``n`` steps done (``n >= 0``); safe from several threads: each call is counted."""
        if type(n) is not int or n < 0:
            n = check_count(n, what="n", hint="steps to add")
        if metrics is not None:
            check_metrics(metrics, self._known)
        with self._lock:
            step = self._n + n
            if step < self._next_step and self._clock() < self._next_time:
                self._n = step
                if metrics is not None:
                    self._metrics = metrics
                return
            self._check_open()
            if self._total is not None and step > self._total:
                raise ValueError(f"advance({n}) would take ProgressBar {self._desc!r} to "
                                 f"{step} steps, beyond total={self._total}")
            self._set(step, metrics)

    def _set(self, step: int, metrics: Metrics | None) -> None:
        """Called with the lock held: store, and draw when a line is due."""
        self._n = step
        if metrics is not None:
            self._metrics = metrics
        now = self._clock()
        if now >= self._next_time:
            self._draw(now)
        elif step >= self._next_step:
            if self._display is None and now < self._next_tenth_time:  # a tenth, too soon
                self._next_step = self._boundary_after(step)  # after the last line: skipped
            else:
                self._draw(now)

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError(f"ProgressBar {self._desc!r} is finished; make a new bar")

    def set_width(self, width: int) -> None:
        """The bar's width in characters, from the next line drawn."""
        width = check_width(width)
        self._restyle(width=width)

    def show_rate(self, show: bool = True) -> None:
        """Show the rate (``6.45batch/s``) or not, from the next line drawn."""
        check_bool(show, what="show")
        self._restyle(show_rate=show)

    def show_eta(self, show: bool = True) -> None:
        """Show the estimated time remaining (``<00:13``) or not, from the next line drawn."""
        check_bool(show, what="show")
        self._restyle(show_eta=show)

    def _restyle(self, **changes: Any) -> None:
        with self._lock:
            self._style = replace(self._style, **changes)

    def set_postfix_str(self, text: str) -> None:
        """Text shown after the metrics (TrainingMonitor's averages and ``wait=12%``), from the
        next line drawn; control characters are shown escaped."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        with self._lock:
            self._note = printable(text)

    def write(self, text: str) -> None:
        """Print ``text`` on its own line above the bar, without breaking it (``tqdm.write``).
        Control characters are shown escaped; printed also when the bar is disabled."""
        write_text(self._file, text, above_bars=self._display is not None)

    def _boundary_after(self, n: int) -> int:
        """The next step that forces a line: the total on a terminal, the next 10 % otherwise;
        ``total + 1`` (an error) when there is none, ``NEVER`` for an unknown length."""
        total = self._total
        if total is None:
            return NEVER
        if self._tty or self._disabled:
            return total if n < total and not self._disabled else total + 1
        for k in range(1, FILE_FRACTION + 1):
            b = math.ceil(k * total / FILE_FRACTION)
            if b > n:
                return b
        return total + 1

    def _state(self, now: float, metrics: Metrics | None) -> BarState:
        return BarState(self._desc, self._n, self._total, now - self._start, metrics, self._style,
                        self._note)

    def _render(self, now: float, ncols: int | None) -> str:
        return render_line(self._state(now, self._metrics), ncols=ncols or None)

    def _ncols(self) -> int | None:
        return self._display.ncols if self._display is not None else None

    def _draw(self, now: float) -> None:
        """Called with the bar's lock held."""
        self._next_time = now + self._interval
        self._next_step = self._boundary_after(self._n)
        if self._disabled:
            return
        line = self._render(now, self._ncols())
        if line == self._last_line:
            return
        self._last_line = line
        if self._display is not None:
            self._display.line = line
            self._display.refresh()  # takes tqdm's write lock
        else:
            self._drawn = (self._n, id(self._metrics), self._note)
            self._next_tenth_time = now + self._floor
            write_line(self._file, line)

    def finish(self) -> None:
        """Draw the final line (on a terminal: leave it, or clear it with ``leave=False``).
        The line is always closed; a metric that can no longer be shown (a mapping changed
        after ``update()``) is left out of the final line and the error raised after."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._next_step = -1  # every later update() takes the slow path and raises
            if self._disabled:
                return
            if (self._display is None and self._metrics is None
                    and self._drawn == (self._n, id(None), self._note)):
                return  # off a terminal, no metrics: the last line written is the final one
            now, error = self._clock(), None
            try:
                line = self._render(now, self._ncols())
            except Exception as exc:  # re-raised once the line is closed
                error = exc
                line = render_line(self._state(now, None), ncols=self._ncols())
            if self._display is not None:
                self._display.line = line
                self._display.close()
            elif self._drawn != (self._n, id(self._metrics), self._note) or error is not None:
                write_line(self._file, line)
            self._last_line = line
        if error is not None:
            raise error


    @property
    def n(self) -> int:
        """Steps done so far."""
        return self._n

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def desc(self) -> str:
        return self._desc

    @property
    def style(self) -> BarStyle:
        """Width, show_rate, show_eta and charset in use."""
        return self._style

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
            self._n = check_count(state["n"], what="state['n']", hint="steps done")
            self._start = self._clock() - float(state["elapsed"])
            self._next_step = self._boundary_after(self._n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()

    def __repr__(self) -> str:
        return f"ProgressBar({self._desc!r}, total={self._total}, n={self._n})"


# --- where a line goes: on a terminal, a tqdm instance that shows the given line (tqdm does
# positions, clearing and the write lock); elsewhere, whole lines written under tqdm's
# process-wide write lock
class TerminalLine(tqdm):  # type: ignore[type-arg]
    """A tqdm bar that shows the line it is given. The first line is rendered when tqdm first
    draws, once it knows the terminal's width."""

    monitor_interval = 0  # no tqdm monitor thread for these bars

    def __init__(self, first_line: Callable[[int | None], str], **kwargs: Any) -> None:
        self.line: str | None = None
        self._first_line = first_line
        super().__init__(**kwargs)

    def __str__(self) -> str:
        if self.line is None:
            self.line = self._first_line(self.ncols)
        return self.line


def write_lock() -> Any:
    """tqdm's process-wide write lock (shared with every tqdm bar)."""
    return tqdm.get_lock()  # type: ignore[no-untyped-call]


def write_line(file: TextIO, line: str) -> None:
    """``line`` and a newline, flushed, under the write lock (never interleaved)."""
    with write_lock():
        file.write(line + "\n")
        flush = getattr(file, "flush", None)
        if callable(flush):
            flush()


def write_text(file: TextIO, text: str, *, above_bars: bool) -> None:
    """A user's ``text`` (control characters escaped) on its own line(s). ``above_bars`` (a
    terminal with bars): the bars on ``file`` are cleared, the text written, the bars redrawn
    below it (``tqdm.write``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    safe = "\n".join(printable(line) for line in text.split("\n"))
    if above_bars:
        tqdm.write(safe, file=file)
    else:
        write_line(file, safe)


def supports_unicode(file: Any) -> bool:
    """Whether ``file`` can encode the block characters of a bar (else an ASCII bar)."""
    encoding = getattr(file, "encoding", None)
    if not isinstance(encoding, str):
        return True  # text buffers (io.StringIO) take any character
    try:
        "█▏".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# --- argument checks, each with a message that says what was wrong. Metrics are checked at
# the call by type only: a tensor's element count and dtype are metadata, so no value is read
# from a device
def check_metrics(metrics: Any, known: set[str]) -> None:
    """A mapping of name -> number or one-element tensor. ``known`` holds the names already
    checked (and gets the new ones), so a float under a known name costs a type check and a
    set lookup."""
    if type(metrics) is not dict:
        check_mapping(metrics)
    for key, value in metrics.items():
        if type(value) is not float or key not in known:
            check_metric(key, value, known)


def check_mapping(metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
        )


def check_metric(key: Any, value: Any, known: set[str]) -> None:
    """One metric: a non-empty string name (added to ``known``) and a number or a one-element
    tensor (its element count and dtype only: nothing is read from a device)."""
    if key not in known:
        check_key(key, what="a metric name")
        known.add(key)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    name = printable(key)
    numel = getattr(value, "numel", None)
    if callable(numel) and hasattr(value, "dtype"):  # a tensor: shape and dtype, no read
        if numel() != 1:
            shape = list(getattr(value, "shape", ()))
            raise ValueError(f"metric {name!r} is a tensor of shape {shape}; pass a "
                             "one-element tensor (e.g. loss.mean()) or a number")
        is_complex = getattr(value, "is_complex", None)
        if str(value.dtype) == "torch.bool" or (callable(is_complex) and is_complex()):
            raise TypeError(f"metric {name!r} is a {value.dtype} tensor; pass a real number")
        return
    raise TypeError(f"metric {name!r} must be a number or a one-element tensor, "
                    f"got {type(value).__name__} {value!r:.40}")


def check_width(width: Any) -> int:
    return check_int(width, what="width", minimum=1, hint="characters of bar")


def check_options(*, desc: Any, total: Any, width: Any, show_rate: Any, show_eta: Any,
                  leave: Any, disable: Any, file: Any, clock: Any, mininterval: Any,
                  position: Any, line_gap: Any) -> tuple[int | None, int]:
    """The constructor's arguments; ``total`` and ``width`` come back as plain ints."""
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a string, got {type(desc).__name__}")
    checked_total = check_optional_int(total, what="total", minimum=1,
                                       hint="the number of steps; None: unknown length")
    checked_width = check_width(width)
    for flag, value in (("show_rate", show_rate), ("show_eta", show_eta), ("leave", leave),
                        ("disable", disable)):
        check_bool(value, what=flag)
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
    if mininterval is not None:
        check_non_negative(mininterval, what="mininterval", hint="seconds; None: the default")
    if line_gap is not None:
        check_non_negative(line_gap, what="line_gap",
                           hint="seconds between two lines off a terminal; None: the default")
    check_optional_int(position, what="position", minimum=0,
                       hint="the bar's line among several bars")
    return checked_total, checked_width
