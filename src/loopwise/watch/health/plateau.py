"""Plateau: a metric that has not improved for ``patience`` evaluations.

"Improved" is decided by the one shared rule, :class:`loopwise.watch.improvement.Improvement`
(``mode``, ``min_delta``), the same one early stopping and LR-on-plateau use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loopwise.utils.validate import check_non_negative
from loopwise.watch.health.base import (
    Finding,
    KeyedDetector,
    check_positive_int,
    check_unit,
    fmt,
)
from loopwise.watch.improvement import Improvement, check_mode


class PlateauDetector(KeyedDetector):
    """Fires when a matching series has gone ``patience`` evaluations without improving.

    The episode lasts until the series improves again. Defaults: ``keys="val_loss"``,
    ``patience=5``, ``mode="auto"`` (from the name: losses min, accuracies max),
    ``min_delta=0.0``, fed by the ``epoch`` stream; ``unit`` is the word used in the message.
    """

    name = "plateau"

    def __init__(self, keys: str | Sequence[str] = "val_loss", *, patience: int = 5,
                 mode: str = "auto", min_delta: float = 0.0, unit: str = "epochs",
                 streams: Iterable[str] | str = ("epoch",), level: str = "warning") -> None:
        super().__init__(keys, streams=streams, level=level)
        self.patience = check_positive_int(patience, what="patience")
        self.mode = check_mode(mode)
        self.min_delta = check_non_negative(min_delta, what="min_delta")
        self.unit = check_unit(unit)

    def _new_state(self, key: str) -> dict[str, Any]:
        rule = Improvement(mode=self.mode, monitor=key, min_delta=self.min_delta)
        return {"rule": rule, "since": 0}

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:
        rule: Improvement = state["rule"]
        if math.isnan(value):
            return None  # NaN is the non-finite detector's business; it neither counts nor resets
        if rule.update(value, step):
            state["since"] = 0
            return None
        state["since"] += 1
        if state["since"] < self.patience:
            return None
        assert rule.best is not None
        return self._finding(
            key, step,
            f"{key} has not improved for {state['since']} {self.unit} "
            f"(best {fmt(rule.best)} at step {rule.best_step})",
            evaluations=state["since"], best=rule.best, best_step=rule.best_step, value=value,
            patience=self.patience,
        )

    def _dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"rule": state["rule"].state_dict(), "since": state["since"]}

    def _load_state(self, key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        state = self._new_state(key)
        state["rule"].load_state_dict(raw["rule"])
        state["since"] = int(raw["since"])
        return state
