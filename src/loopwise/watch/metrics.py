"""Keras-style running averages with one count per metric.

A metric logged at a different rate than another averages over its own count: ``loss`` logged
every step and ``val_acc`` logged every 10th step each divide by how often *they* were logged.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Columns = tuple[Sequence[int], Sequence[float], Sequence[float]]
"""One metric's ``(steps, wall_times, values)``."""


def column_sum(values: Sequence[float]) -> float:
    """The sum of a column: NumPy's (pairwise) for an ``array('d')``, ``sum`` otherwise."""
    if isinstance(values, array) and values.typecode == "d":
        return float(np.frombuffer(values, dtype=np.float64).sum())
    return sum(values)


@dataclass
class RunningAverages:
    """Sums and counts per metric; ``averages()`` divides them. Non-finite values are counted."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # a float where weighted
    nonfinite: dict[str, int] = field(default_factory=dict)

    def add(self, values: Mapping[str, float]) -> list[str]:
        """Add one step's values; return the keys whose value was NaN or infinite."""
        bad: list[str] = []
        sums, counts = self.sums, self.counts
        for key, value in values.items():
            if key in sums:
                sums[key] += value
                counts[key] += 1
            else:
                sums[key] = value
                counts[key] = 1
            if value - value != 0.0:  # NaN or +-inf
                bad.append(key)
                self.nonfinite[key] = self.nonfinite.get(key, 0) + 1
        return bad

    def add_columns(self, columns: Mapping[str, Columns], *,
                    weights: Mapping[str, Sequence[float]] | None = None) -> list[str]:
        """Add many steps at once, column-wise (a C-level ``sum`` per metric). ``weights``
        (per key, one per value: batch sizes) make the mean a weighted one, as a loss averaged
        over samples rather than batches."""
        bad: list[str] = []
        sums, counts = self.sums, self.counts
        for key, (_, _, col) in columns.items():
            w = None if weights is None else weights.get(key)
            if w is None:
                total, count = column_sum(col), len(col)
            else:
                total = float(np.dot(np.asarray(col, dtype=np.float64),
                                     np.asarray(w, dtype=np.float64)))
                count = float(sum(w))  # type: ignore[assignment]
            sums[key] = sums.get(key, 0.0) + total
            counts[key] = counts.get(key, 0) + count
            if not math.isfinite(total):
                n_bad = sum(1 for v in col if not math.isfinite(v))
                if n_bad:
                    bad.append(key)
                    self.nonfinite[key] = self.nonfinite.get(key, 0) + n_bad
        return bad

    def averages(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()
        self.nonfinite.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts),
                "nonfinite": dict(self.nonfinite)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = {"sums", "counts", "nonfinite"} - set(state)
        if missing:
            raise KeyError(f"running-average state is missing {sorted(missing)}")
        if set(state["sums"]) != set(state["counts"]):
            raise ValueError("running-average state is inconsistent: sums and counts name "
                             "different metrics")
        self.sums = {k: float(v) for k, v in state["sums"].items()}
        self.counts = {k: (v if isinstance(v, int) else float(v))  # type: ignore[misc]
                       for k, v in state["counts"].items()}
        self.nonfinite = {k: int(v) for k, v in state["nonfinite"].items()}


def format_value(key: str, value: float) -> str:
    """One value as the bar shows it (:func:`loopwise.watch.display.format_value`)."""
    from loopwise.watch.display import format_value as show

    return show(key, value)


def format_postfix(averages: Mapping[str, float]) -> str:
    """``loss=0.2310, accuracy=90.00%``: the values as the bar shows them
    (:func:`loopwise.watch.display.format_metrics`)."""
    from loopwise.watch.display import format_metrics

    return format_metrics(averages)
