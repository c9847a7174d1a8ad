"""Non-finite values: a loss or metric that became NaN or infinite."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from loopwise.watch.health.base import Column, Finding, KeyedDetector, episode_starts


class NonFiniteDetector(KeyedDetector):
    """Fires when a matching series takes a NaN or infinite value.

    The episode lasts while the values stay non-finite; the first finite value ends it.
    Defaults: every key (``"*"``), the ``step`` and ``epoch`` streams, level ``error``.
    """

    name = "nonfinite"

    def __init__(self, keys: str | Sequence[str] = "*", *,
                 streams: Iterable[str] | str = ("step", "epoch"),
                 level: str = "error") -> None:
        super().__init__(keys, streams=streams, level=level)

    def _new_state(self, key: str) -> dict[str, Any]:
        return {"count": 0}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        if math.isfinite(value):
            return None
        state["count"] += 1
        return self._nonfinite(key, step, value, state["count"])

    def _check_column(self, key: str, state: dict[str, Any], steps: Column, values: Column,
                      active: bool) -> tuple[list[tuple[int, Finding]], bool]:
        bad = ~np.isfinite(np.asarray(values, dtype=np.float64))
        if not bad.any():
            return [], False
        counts = state["count"] + np.cumsum(bad)
        state["count"] = int(counts[-1])
        starts, still = episode_starts(bad, np.arange(len(bad)), len(bad), active)
        return [(i, self._nonfinite(key, int(steps[i]), float(values[i]), int(counts[i])))
                for i, _ in starts], still

    def _nonfinite(self, key: str, step: int, value: float, count: int) -> Finding:
        return self._finding(
            key, step,
            f"{key} is {value} at step {step}: check the learning rate, the inputs for NaN, "
            "and mixed-precision loss scaling",
            value=value, occurrences=count,
        )
