"""Where a :class:`~loopwise.watch.progress.ProgressBar` line goes: on a terminal, a tqdm
instance that shows the given line (tqdm does positions, clearing and the write lock);
elsewhere, whole lines written under tqdm's process-wide write lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.utils.text import printable


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
