"""Tiny timing helpers shared by the bench scripts: best-of-N wall time, per-item cost."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], *, repeat: int = 5) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds (least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ns(seconds: float, n: int) -> float:
    return seconds / n * 1e9
