"""TrainingMonitor's bar: on a terminal a tqdm bar drawn in place (tqdm's default layout with
one rate unit, docs/progress.md: always batch/s, never s/batch; with no total, a count without a
bar); off a terminal (CI logs, files) :class:`~loopwise.watch.progress.ProgressBar`'s line mode:
whole lines, one per 10 % (at most one per ``mininterval``, or per second if that is longer)
or per ``mininterval`` (at least 5 s), and the last; no carriage returns.
Both take the monitor's calls: ``set_postfix_str``, ``update(n)``, ``reset(total=)``, ``close``."""

from __future__ import annotations

import sys
from typing import Any, Protocol

from tqdm import tqdm

from loopwise.utils.text import printable
from loopwise.watch.display import RATE_UNIT
from loopwise.watch.progress import FILE_FLOOR, FILE_INTERVAL, ProgressBar

_BAR_FORMAT = ("{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}"
               "{postfix}]")
_COUNT_FORMAT = "{desc}{n_fmt} [{elapsed}, {rate_noinv_fmt}{postfix}]"
_TQDM_BAR_WIDTH = 10  # the width of tqdm's bar when it does not know the line's width


class MonitorBar(Protocol):
    """What a TrainingMonitor calls on its bar."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...
    def update(self, n: float | None = 1) -> bool | None: ...
    def reset(self, total: float | None = None) -> None: ...
    def close(self) -> None: ...


class LineBar:
    """The monitor's bar off a terminal: a :class:`ProgressBar` in line mode, restarted by
    ``reset`` (a monitor iterated again)."""

    def __init__(self, total: int | None, desc: str | None, file: Any, *, disable: bool,
                 mininterval: float) -> None:
        self._desc = desc or ""
        self._file = file
        self._disable = disable
        self._interval = max(float(mininterval), FILE_INTERVAL)
        self._gap = min(float(mininterval), FILE_FLOOR)  # between two tenths' lines
        self._bar = self._make(total)
        self._n = 0

    def _make(self, total: int | None) -> ProgressBar:
        total = total or None  # an empty iterable: a count (0batch), not a bar of 0 steps
        return ProgressBar(self._desc, total, width=_TQDM_BAR_WIDTH, file=self._file,
                           mininterval=self._interval, disable=self._disable,
                           line_gap=self._gap)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._bar.set_postfix_str(s)

    def update(self, n: float | None = 1) -> bool | None:
        self._n += int(n or 0)
        total = self._bar.total
        self._bar.update(self._n if total is None else min(self._n, total))
        return None

    def reset(self, total: float | None = None) -> None:
        self._bar.finish()
        self._bar = self._make(None if total is None else int(total))
        self._n = 0

    def close(self) -> None:
        self._bar.finish()


def monitor_bar(total: int | None, desc: str | None, file: Any, *, leave: bool, disable: bool,
                mininterval: float) -> MonitorBar:
    """The bar of a TrainingMonitor writing to ``file`` (default ``sys.stderr``)."""
    stream = sys.stderr if file is None else file
    if not bool(getattr(stream, "isatty", lambda: False)()):
        return LineBar(total, desc, stream, disable=disable, mininterval=mininterval)
    shown = None if desc is None else printable(desc) + ("" if total is not None else ": ")
    bar: MonitorBar = tqdm(total=total, desc=shown, file=file, leave=leave, disable=disable,
                           unit=RATE_UNIT,
                           bar_format=_BAR_FORMAT if total is not None else _COUNT_FORMAT,
                           mininterval=mininterval, dynamic_ncols=True)
    return bar
