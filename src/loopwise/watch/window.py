"""The monitor's refresh window: what the loop logged since the last refresh, as columns.

The step path only appends. The generator appends each step's start time to ``times``;
``log()`` appends, per key, the step's index in the window (``len(times)`` at the call: 0 is
the step before the window, or the pass start) and the value. At refresh :func:`take_columns`
gives each key its ``(steps, wall_times, values)``.

When every key was logged once per step over consecutive steps (the common loop), the keys
share one ``steps`` and one ``wall_times`` array, built by NumPy from a range and one slice of
``times``; anything else (metrics logged at different rates, two ``log()`` calls in one step)
takes the general path, which gives the same values.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PendingColumn = tuple[list[int], list[Any]]
"""One key's values in the window: ``(step indexes, values)``."""

Column = tuple[Sequence[int], Sequence[float], Sequence[float]]
"""One metric's ``(steps, wall_times, values)``."""


@dataclass(frozen=True)
class Window:
    """A refresh window's values: ``columns`` maps a key to ``(steps, wall_times, values)``.

    ``uniform``: every key was logged once per step over consecutive steps; the keys then
    share one ``steps`` and one ``wall_times`` sequence (one CSV row per step).
    """

    columns: dict[str, Column]
    uniform: bool


def _float64(key: str, values: list[Any]) -> array[float]:
    """``values`` as an ``array('d')`` (one C-level pass: the store and the sums then copy
    or scan memory, not Python objects)."""
    try:
        return array("d", np.asarray(values, dtype=np.float64).tobytes())
    except OverflowError:
        raise ValueError(f"metric {key!r} has an int too large for a float64; log it as a "
                         "float (or scale it)") from None


def take_columns(pending: dict[str, PendingColumn], times: Sequence[float], step0: int,
                 time_before: float, to_wall: float) -> Window:
    """Columns of ``pending``: step ``step0 + index``, wall time ``times[index - 1] +
    to_wall`` (``time_before + to_wall`` for index 0)."""
    if not pending:
        return Window({}, uniform=True)
    first = next(iter(pending.values()))[0]
    n = len(first)
    i0 = first[0] if n else 0
    if (i0 >= 1 and first[-1] == i0 + n - 1 and first == list(range(i0, i0 + n))
            and all(idx is first or idx == first for idx, _ in pending.values())):
        steps = array("q", np.arange(step0 + i0, step0 + i0 + n, dtype=np.int64).tobytes())
        perf = np.array(times[i0 - 1:i0 - 1 + n], dtype=np.float64)
        perf += to_wall
        wall = array("d", perf.tobytes())
        return Window({k: (steps, wall, _float64(k, values)) for k, (_, values)
                       in pending.items()}, uniform=True)
    columns: dict[str, Column] = {}
    for key, (idx, values) in pending.items():
        steps_list = [step0 + i for i in idx]
        wall_list = [(times[i - 1] if i else time_before) + to_wall for i in idx]
        columns[key] = (steps_list, wall_list, values)
    return Window(columns, uniform=False)
