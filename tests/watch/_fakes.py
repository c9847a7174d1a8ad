"""Fakes for the bar tests: a clock that moves only when told, and a terminal."""

from __future__ import annotations

import io


class Clock:
    """``clock()`` returns ``t``; tests move it by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    """A terminal: isatty() is True; counts write() calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)
