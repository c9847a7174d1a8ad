"""The one null console: a text stream that takes every write and shows nothing (``fit`` with
``progress=False``, a rank other than 0 under torchrun)."""

from __future__ import annotations

from typing import TextIO, cast


class _NullConsole:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def null_console() -> TextIO:
    """A stream for bars and text that must not be shown (nothing is kept)."""
    return cast(TextIO, _NullConsole())
