"""Loss spikes: a value far above the recent ones, by a robust z-score.

Over the previous ``window`` finite values, with median ``m`` and median absolute deviation
``MAD``, the robust z-score of a new value ``x`` is ``0.6745 * (x - m) / MAD`` (0.6745 makes it
comparable to a standard z-score for normal noise). Median and MAD ignore the outliers they are
meant to find, so one spike does not hide the next. A value fires when its z-score exceeds
``threshold`` (only upward: a falling loss is good news). When the window is perfectly flat
(MAD = 0) a floor of ``1e-6 * |m|`` (or 1e-12) stands in for the MAD.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

from loopwise.utils.validate import check_positive
from loopwise.watch.health.base import (
    Finding,
    KeyedDetector,
    check_positive_int,
    fmt,
)

_NORMAL_MAD = 0.6745  # MAD of the standard normal distribution


def robust_z(history: Sequence[float], value: float) -> float:
    """The robust z-score of ``value`` against ``history`` (median and MAD)."""
    return _robust_z(history, value, upward_only=False)[0]


def _robust_z(history: Sequence[float], value: float, *,
              upward_only: bool = True) -> tuple[float, float]:
    """(z, median). With ``upward_only`` a value at or below the median gets z = 0 without
    computing the MAD (the detector only cares about upward spikes)."""
    if not history:
        raise ValueError("robust_z needs at least one value of history")
    m = median(history)
    if upward_only and value <= m:
        return 0.0, m
    mad = median([abs(x - m) for x in history])
    scale = max(mad, 1e-6 * abs(m), 1e-12)
    return _NORMAL_MAD * (value - m) / scale, m


class SpikeDetector(KeyedDetector):
    """Fires on a value whose robust z-score over the last ``window`` values exceeds ``threshold``.

    Defaults: ``keys="*loss"``, ``window=50``, ``threshold=8.0``, ``min_history=20`` values
    before it judges, fed by the ``step`` stream. Non-finite values are skipped.
    """

    name = "spike"
    # fed the highest point of each refresh window (its own step and value), not the window's
    # mean: a spike is reported where the record holds it (HealthMonitor.observe_window)
    peaks = True

    def __init__(self, keys: str | Sequence[str] = "*loss", *, window: int = 50,
                 threshold: float = 8.0, min_history: int = 20,
                 streams: Iterable[str] | str = ("step",), level: str = "warning") -> None:
        super().__init__(keys, streams=streams, level=level)
        self.window = check_positive_int(window, what="window")
        if self.window < 3:
            raise ValueError(f"window must hold at least 3 values for a median and MAD, "
                             f"got {window}")
        self.threshold = check_positive(threshold, what="threshold")
        self.min_history = check_positive_int(min_history, what="min_history")
        if self.min_history > self.window:
            raise ValueError(f"min_history ({min_history}) cannot exceed window ({window})")

    def _new_state(self, key: str) -> dict[str, Any]:
        return {"history": []}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        if not math.isfinite(value):
            return None
        history: list[float] = state["history"]
        n = len(history)
        z, m = _robust_z(history, value) if n >= self.min_history else (0.0, value)
        history.append(value)
        if len(history) > self.window:
            del history[0]
        if z <= self.threshold:
            return None
        return self._finding(
            key, step,
            f"{key} spiked to {fmt(value)} at step {step} (median of the last {n} was "
            f"{fmt(m)}; robust z = {z:.1f} > {fmt(self.threshold)})",
            value=value, median=m, z=z, threshold=self.threshold,
        )
