"""The monitor's refresh-time work, apart from its step path: reading device values in one
transfer, folding a window of columns into the CSV, and the loop-timing snapshot."""

from __future__ import annotations

from collections.abc import Iterable
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


def read_tensor_slots(slots: Iterable[tuple[Any, Any]]) -> None:
    """Replace each ``container[key]`` that is a tensor by its float, in place.

    The tensors are stacked per device and read in one transfer each: one device sync per
    call, however many values (the point of keeping them on the device until now).
    """
    where: dict[torch.device, list[tuple[Any, Any]]] = {}
    for container, key in slots:
        value = container[key]
        if isinstance(value, torch.Tensor):
            where.setdefault(value.device, []).append((container, key))
    for group in where.values():
        stacked = torch.stack([c[k].detach().to(torch.float64).reshape(()) for c, k in group])
        for (container, key), number in zip(group, stacked.tolist(), strict=True):
            container[key] = number


def resolve_device_values(columns: dict[str, Columns]) -> None:
    """Replace device tensors in ``columns`` by floats, in place: one transfer per device."""
    read_tensor_slots((values, i) for _, _, values in columns.values()
                      for i in range(len(values)))


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
