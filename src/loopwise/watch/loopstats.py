"""The one loop-timing record: what the loop measured, which the system sampler reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopStats:
    """Cumulative loop timings: steps done, seconds waiting for data, seconds in the body."""

    steps: int = 0
    data_wait_s: float = 0.0
    body_s: float = 0.0

    @property
    def data_wait_share(self) -> float:
        total = self.data_wait_s + self.body_s
        return self.data_wait_s / total if total > 0 else 0.0
