"""Rising trend: a metric that got worse at each of the last ``epochs`` evaluations.

Worse means worse than the *previous* value by more than ``min_delta`` (a loss rising, an
accuracy falling); see :func:`loopwise.watch.health.base.worse`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from loopwise.utils.validate import check_non_negative
from loopwise.watch.health.base import (
    Finding,
    KeyedDetector,
    check_positive_int,
    check_unit,
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
        direction = "rising" if state["mode"] == "min" else "falling"
        return self._finding(
            key, step,
            f"{key} {direction} for {state['count']} {self.unit} "
            f"({fmt(state['start'])} -> {fmt(value)})",
            evaluations=state["count"], start=state["start"], value=value, direction=direction,
        )
