"""The monitor's refresh-time work, apart from its step path: reading device values in one
transfer, folding a window of columns into the CSV, and the loop-timing snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from loopwise.watch.csvlog import CsvLog
from loopwise.watch.metrics import Columns, RunningAverages
from loopwise.watch.resources import ram_percent, vram_gb


@dataclass(frozen=True)
class LoopStats:
    """Cumulative loop timings: steps done, seconds waiting for data, seconds in the body."""

    steps: int
    data_wait_s: float
    body_s: float

    @property
    def data_wait_share(self) -> float:
        total = self.data_wait_s + self.body_s
        return self.data_wait_s / total if total > 0 else 0.0


def resolve_device_values(columns: dict[str, Columns]) -> None:
    """Replace device tensors in ``columns`` by floats, in place: one transfer per device."""
    where: dict[torch.device, list[tuple[list[Any], int]]] = {}
    for _, _, values in columns.values():
        for i, value in enumerate(values):
            if isinstance(value, torch.Tensor):
                where.setdefault(value.device, []).append((values, i))
    for slots in where.values():
        stacked = torch.stack([vals[i].to(torch.float64) for vals, i in slots])
        for (vals, i), number in zip(slots, stacked.tolist(), strict=True):
            vals[i] = number


def fold_into_csv(columns: dict[str, Columns], averages: RunningAverages, csv: CsvLog
                  ) -> list[str]:
    """Fold values step by step into ``averages``, one CSV row of running averages per step;
    return the keys that had non-finite values."""
    by_step: dict[int, list[tuple[str, float, float]]] = {}
    for key, (steps, times, values) in columns.items():
        for step, t, value in zip(steps, times, values, strict=True):
            by_step.setdefault(step, []).append((key, t, value))
    ram, vram = ram_percent(), vram_gb()
    bad: list[str] = []
    for step in sorted(by_step):
        entries = by_step[step]
        for key, _, value in entries:
            bad.extend(averages.add({key: value}))
        wall = max(t for _, t, _ in entries)
        csv.add(wall, step, averages.averages(), ram, vram)
    return bad
