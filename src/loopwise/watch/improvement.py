"""One answer to "is this an improvement?", shared by early stopping, LR-on-plateau, best
checkpoints and the plateau detector (the Keras ``MonitorCallback`` idea).

``Improvement(mode="min", min_delta=0.0)`` keeps the best value seen so far. ``is_better(value)``
answers without changing state; ``update(value)`` records the value and returns whether it was
an improvement. A value counts as better when it beats the best by more than ``min_delta``
(``value < best - min_delta`` in ``min`` mode, ``value > best + min_delta`` in ``max`` mode).
NaN is never an improvement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MODES = ("min", "max")


def check_mode(mode: str, *, what: str = "mode") -> str:
    """Validate a ``mode`` argument and return it."""
    if mode not in MODES:
        raise ValueError(f"{what} must be 'min' or 'max', got {mode!r}")
    return mode


@dataclass
class Improvement:
    """The best value so far of one monitored metric, and the rule that compares to it."""

    mode: str = "min"
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    _seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if not isinstance(self.min_delta, (int, float)) or isinstance(self.min_delta, bool):
            raise TypeError(f"min_delta must be a number, got {type(self.min_delta).__name__}")
        if math.isnan(self.min_delta) or self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")
        self.min_delta = float(self.min_delta)

    def is_better(self, value: float) -> bool:
        """True when ``value`` improves on the best so far by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, step: int | None = None) -> bool:
        """Record ``value``; return True (and keep it as the new best) when it is better."""
        self._seen += 1
        if self.is_better(value):
            self.best = float(value)
            self.best_step = step if step is not None else self._seen
            return True
        return False

    def reset(self) -> None:
        self.best = None
        self.best_step = None
        self._seen = 0

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "min_delta": self.min_delta, "best": self.best,
                "best_step": self.best_step, "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("mode", "min_delta", "best", "best_step", "seen"):
            if key not in state:
                raise KeyError(f"Improvement state is missing {key!r}; was it saved by loopwise?")
        if state["mode"] != self.mode:
            raise ValueError(
                f"saved mode {state['mode']!r} differs from this object's mode {self.mode!r}"
            )
        self.min_delta = float(state["min_delta"])
        self.best = state["best"]
        self.best_step = state["best_step"]
        self._seen = int(state["seen"])
