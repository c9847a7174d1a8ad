"""Folding a refresh window of columns into the running means and, one row per step, the CSV
(the accumulator's refresh-time work, apart from the step path)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopwise.watch.csvlog import CsvLog
from loopwise.watch.metrics import Columns, RunningAverages
from loopwise.watch.resources import ram_percent, vram_gb
from loopwise.watch.window import Window


def fold_window(window: Window, averages: RunningAverages, csv: CsvLog | None) -> list[str]:
    """Fold a refresh window into the running averages (and one CSV row per step); return
    the keys that had non-finite values."""
    if csv is None:
        return averages.add_columns(window.columns)
    if window.uniform:
        return _fold_uniform_into_csv(window.columns, averages, csv)
    return fold_into_csv(window.columns, averages, csv)


def _fold_uniform_into_csv(columns: Mapping[str, Any], averages: RunningAverages,
                           csv: CsvLog) -> list[str]:
    """The CSV fold when every step logged every key once: running sums by ``np.cumsum``
    from the previous sum, in the same order as adding value by value."""
    if not columns:
        return []
    steps, wall, _ = next(iter(columns.values()))
    n = len(steps)
    per_row: dict[str, Sequence[float] | float] = dict(averages.averages())
    bad: list[str] = []
    for key, (_, _, values) in columns.items():
        count = averages.counts.get(key, 0)
        running = np.empty(n + 1, dtype=np.float64)
        running[0] = averages.sums.get(key, 0.0)
        running[1:] = values
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, no warning
            if not math.isfinite(running[1:].sum()):
                n_bad = n - int(np.isfinite(running[1:]).sum())
                if n_bad:
                    bad.append(key)
                    averages.nonfinite[key] = averages.nonfinite.get(key, 0) + n_bad
            np.cumsum(running, out=running)
        averages.sums[key] = float(running[-1])
        averages.counts[key] = count + n
        per_row[key] = (running[1:] / np.arange(count + 1, count + n + 1)).tolist()
    csv.add_rows(wall, steps, per_row, ram_percent(), vram_gb())
    return bad


def fold_into_csv(columns: Mapping[str, Columns], averages: RunningAverages, csv: CsvLog
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
