"""Rising trend: a metric that got worse at each of the last ``epochs`` evaluations.

Worse means worse than the *previous* value by more than ``min_delta`` (a loss rising, an
accuracy falling); see :func:`loopwise.watch.health.base.worse`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from loopwise.utils.validate import check_non_negative
from loopwise.watch.health.base import (
    Column,
    Finding,
    KeyedDetector,
    check_positive_int,
    check_unit,
    episode_starts,
    fmt,
    worse,
)
from loopwise.watch.improvement import check_mode, resolve_mode


class TrendDetector(KeyedDetector):
    """Fires when a matching series got worse ``epochs`` times in a row.

    Defaults: ``keys="*loss"``, ``epochs=3``, ``mode="auto"``, ``min_delta=0.0``, fed by the
    ``epoch`` stream. The episode lasts until the series stops getting worse.
    """

    name = "trend"

    def __init__(self, keys: str | Sequence[str] = "*loss", *, epochs: int = 3,
                 mode: str = "auto", min_delta: float = 0.0, unit: str = "epochs",
                 streams: Iterable[str] | str = ("epoch",), level: str = "warning") -> None:
        super().__init__(keys, streams=streams, level=level)
        self.epochs = check_positive_int(epochs, what="epochs")
        self.mode = check_mode(mode)
        self.min_delta = check_non_negative(min_delta, what="min_delta")
        self.unit = check_unit(unit)

    def _new_state(self, key: str) -> dict[str, Any]:
        return {"mode": resolve_mode(self.mode, key), "previous": None, "start": None,
                "count": 0}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        if not math.isfinite(value):
            return None
        previous = state["previous"]
        state["previous"] = value
        if previous is None or not worse(previous, value, mode=state["mode"],
                                         min_delta=self.min_delta):
            state["count"] = 0
            state["start"] = value
            return None
        state["count"] += 1
        if state["count"] < self.epochs:
            return None
        return self._trend(key, step, value, state["count"], state["start"], state["mode"])

    def _check_column(self, key: str, state: dict[str, Any], steps: Column, values: Column,
                      active: bool) -> tuple[list[tuple[int, Finding]], bool]:
        """Each finite value compared with the finite one before it (``worse``, the same
        arithmetic), and the runs of worse values counted from the latest one that was not."""
        v = np.asarray(values, dtype=np.float64)
        where = np.flatnonzero(np.isfinite(v))  # non-finite values change nothing
        f = v[where]
        if not len(f):
            return [], False
        previous = np.empty_like(f)
        previous[1:] = f[:-1]
        if state["previous"] is None:
            previous[0] = np.nan  # no previous value: not worse (compared below as False)
        else:
            previous[0] = state["previous"]
        if state["mode"] == "min":
            worse_ = f > previous + self.min_delta
        else:
            worse_ = f < previous - self.min_delta
        n = np.arange(len(f))
        reset = np.maximum.accumulate(np.where(worse_, -1, n))  # the latest value not worse
        count = np.where(reset >= 0, n - reset, state["count"] + n + 1)
        starts, still = episode_starts(count >= self.epochs, where, len(v), active)
        found = []
        for i, j in starts:
            start = float(f[reset[j]]) if reset[j] >= 0 else state["start"]
            found.append((i, self._trend(key, int(steps[i]), float(v[i]), int(count[j]), start,
                                         state["mode"])))
        if reset[-1] >= 0:
            state["start"] = float(f[reset[-1]])
        state["previous"] = float(f[-1])
        state["count"] = int(count[-1])
        return found, still

    def _trend(self, key: str, step: int, value: float, count: int, start: float,
               mode: str) -> Finding:
        direction = "rising" if mode == "min" else "falling"
        return self._finding(
            key, step,
            f"{key} {direction} for {count} {self.unit} ({fmt(start)} -> {fmt(value)})",
            evaluations=count, start=start, value=value, direction=direction,
        )
