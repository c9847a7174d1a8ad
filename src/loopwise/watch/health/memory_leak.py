"""Memory leaks: process RSS or torch's allocated memory growing at every epoch.

Fed once per epoch (the runner adds the latest system sample's memory figures to each epoch's
metrics). Fires when a matching series grew by more than ``min_growth`` at each of the last
``epochs`` epochs, after the first ``warmup`` epochs (allocators and caches grow at first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from loopwise.utils.validate import check_count, check_non_negative
from loopwise.watch.health.base import (
    Finding,
    KeyedDetector,
    check_positive_int,
    fmt,
)

MEMORY_KEYS = ("proc_rss_mib", "gpu*_torch_alloc_mib")


class MemoryLeakDetector(KeyedDetector):
    """Fires when memory grew by more than ``min_growth`` (MiB) at each of ``epochs`` epochs.

    Defaults: ``keys=("proc_rss_mib", "gpu*_torch_alloc_mib")``, ``epochs=5``,
    ``min_growth=1.0`` MiB, ``warmup=1`` epoch ignored, fed by the ``epoch`` stream.
    """

    name = "memory_leak"

    def __init__(self, keys: str | Sequence[str] = MEMORY_KEYS, *, epochs: int = 5,
                 min_growth: float = 1.0, warmup: int = 1,
                 streams: Iterable[str] | str = ("epoch",), level: str = "warning") -> None:
        super().__init__(keys, streams=streams, level=level)
        self.epochs = check_positive_int(epochs, what="epochs")
        self.min_growth = check_non_negative(min_growth, what="min_growth")
        self.warmup = check_count(warmup, what="warmup", hint="epochs ignored")

    def _new_state(self, key: str) -> dict[str, Any]:
        return {"seen": 0, "previous": None, "start": None, "count": 0}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        if not math.isfinite(value):
            return None
        state["seen"] += 1
        if state["seen"] <= self.warmup:
            return None
        previous = state["previous"]
        state["previous"] = value
        if previous is None or value - previous <= self.min_growth:
            state["count"] = 0
            state["start"] = value
            return None
        state["count"] += 1
        if state["count"] < self.epochs:
            return None
        growth = (value - state["start"]) / state["count"]
        return self._finding(
            key, step,
            f"{key} grew at each of the last {state['count']} epochs ({fmt(state['start'])} -> "
            f"{fmt(value)} MiB, +{growth:.1f} MiB/epoch): a memory leak? look for tensors kept "
            "across steps (e.g. summing losses without .item() or .detach())",
            start=state["start"], value=value, epochs=state["count"],
            growth_per_epoch=growth,
        )
