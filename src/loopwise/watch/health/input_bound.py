"""Input-bound training: the loop spends a large share of its time waiting for the next batch.

Fed by the system sampler's ``data_wait_pct`` (the share of loop time spent in ``next()`` on
the data iterator, from TrainingMonitor's loop statistics). Fires when the mean of the last
``window`` samples exceeds ``threshold_pct``; the episode lasts until that mean drops back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loopwise.utils.validate import check_float
from loopwise.watch.health.base import Finding, KeyedDetector, check_positive_int

DATA_WAIT_KEY = "data_wait_pct"


class InputBoundDetector(KeyedDetector):
    """Fires when the data-wait share averages more than ``threshold_pct`` over ``window`` samples.

    Defaults: ``threshold_pct=20.0``, ``window=5`` samples (10 s at the sampler's default 2 s
    interval), ``keys="data_wait_pct"``, fed by the ``system`` stream.
    """

    name = "input_bound"

    def __init__(self, *, threshold_pct: float = 20.0, window: int = 5,
                 keys: str | Sequence[str] = DATA_WAIT_KEY,
                 streams: Iterable[str] | str = ("system",), level: str = "warning") -> None:
        super().__init__(keys, streams=streams, level=level)
        self.threshold_pct = check_float(threshold_pct, what="threshold_pct", minimum=0,
                                         maximum=100, open_min=True, open_max=True,
                                         hint="a percentage")
        self.window = check_positive_int(window, what="window")
        self._device = "CPU"

    def update(self, step: int, values: Mapping[str, float], *,
               time: float | None = None) -> list[Finding]:
        if any(k.startswith("gpu") for k in values):
            self._device = "GPU"
        return super().update(step, values, time=time)

    def _new_state(self, key: str) -> dict[str, Any]:
        return {"recent": []}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        if not math.isfinite(value):
            return None
        recent: list[float] = state["recent"]
        recent.append(value)
        if len(recent) > self.window:
            del recent[0]
        if len(recent) < self.window:
            return None
        share = sum(recent) / len(recent)
        if share <= self.threshold_pct:
            return None
        advice = ("raise num_workers or pin_memory" if self._device == "GPU"
                  else "raise num_workers")
        return self._finding(
            key, step,
            f"the {self._device} is waiting for data: {share:.0f}% of step time went to "
            f"waiting for the next batch over the last {self.window} samples (threshold "
            f"{self.threshold_pct:g}%); {advice}",
            share_pct=share, threshold_pct=self.threshold_pct, window=self.window,
            device=self._device,
        )
