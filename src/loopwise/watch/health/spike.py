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

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from loopwise.utils.validate import check_positive
from loopwise.watch.health.base import (
    Column,
    Finding,
    KeyedDetector,
    check_positive_int,
    episode_starts,
    fmt,
)

_NORMAL_MAD = 0.6745  # MAD of the standard normal distribution
_ROWS = 65_536  # windows judged at once by the column path (memory: _ROWS x window floats)


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
        return self._spike(key, step, value, n, m, z)

    def _check_column(self, key: str, state: dict[str, Any], steps: Column, values: Column,
                      active: bool) -> tuple[list[tuple[int, Finding]], bool]:
        """``_check`` over a column, with the same medians: once the history holds
        ``window`` values, every window's median (and, where the value is above it, its MAD)
        is taken with numpy's partition, as ``statistics.median`` takes it (the middle value,
        or the mean of the two middle ones); the first windows, shorter, go through
        ``_robust_z`` itself."""
        v = np.asarray(values, dtype=np.float64)
        where = np.flatnonzero(np.isfinite(v))  # non-finite values are skipped
        history: list[float] = state["history"]
        h0, window, count = len(history), self.window, len(where)
        seq = np.concatenate([np.asarray(history, dtype=np.float64), v[where]])
        z = np.zeros(count)
        med = seq[h0:].copy()
        n = np.minimum(window, h0 + np.arange(count))  # the history's length before each
        full = min(count, max(0, window - h0))  # from here on the history is a full window
        for j in range(full):
            if n[j] >= self.min_history:
                z[j], med[j] = _robust_z(seq[h0 + j - n[j]:h0 + j].tolist(), float(seq[h0 + j]))
        if count > full:
            windows = sliding_window_view(seq, window)  # row r: seq[r:r + window]
            for start in range(full, count, _ROWS):
                stop = min(count, start + _ROWS)
                rows = windows[h0 + start - window:h0 + stop - window]
                x = seq[h0 + start:h0 + stop]
                m = _medians(rows)
                med[start:stop] = m
                up = np.flatnonzero(x > m)  # at or below the median: z = 0 (upward only)
                if len(up):
                    mu = m[up]
                    mad = _medians(np.abs(rows[up] - mu[:, None]))
                    scale = np.maximum(np.maximum(mad, 1e-6 * np.abs(mu)), 1e-12)
                    z[start + up] = _NORMAL_MAD * (x[up] - mu) / scale
        state["history"] = seq[-window:].tolist()
        starts, still = episode_starts(z > self.threshold, where, len(v), active)
        return [(i, self._spike(key, int(steps[i]), float(v[i]), int(n[j]), float(med[j]),
                                float(z[j]))) for i, j in starts], still

    def _spike(self, key: str, step: int, value: float, n: int, m: float, z: float) -> Finding:
        return self._finding(
            key, step,
            f"{key} spiked to {fmt(value)} at step {step} (median of the last {n} was "
            f"{fmt(m)}; robust z = {z:.1f} > {fmt(self.threshold)})",
            value=value, median=m, z=z, threshold=self.threshold,
        )


def _medians(rows: Any) -> Any:
    """Each row's median as ``statistics.median`` gives it: the middle value of the sorted
    row, or the mean ``(a + b) / 2`` of the two middle ones."""
    width = rows.shape[1]
    half = width // 2
    if width % 2:
        return np.partition(rows, half, axis=1)[:, half]
    parted = np.partition(rows, (half - 1, half), axis=1)
    return (parted[:, half - 1] + parted[:, half]) / 2
