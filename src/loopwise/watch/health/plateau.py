"""Plateau: a metric that has not improved for ``patience`` evaluations.

"Improved" is decided by the one shared rule, :class:`loopwise.watch.improvement.Improvement`
(``mode``, ``min_delta``), the same one early stopping and LR-on-plateau use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from loopwise.utils.validate import check_non_negative
from loopwise.watch.health.base import (
    Column,
    Finding,
    KeyedDetector,
    check_positive_int,
    check_unit,
    episode_starts,
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
        return self._plateau(key, step, value, state["since"], rule.best, rule.best_step)

    def _check_column(self, key: str, state: dict[str, Any], steps: Column, values: Column,
                      active: bool) -> tuple[list[tuple[int, Finding]], bool]:
        """With ``min_delta=0`` (the default) the best so far is a running minimum (maximum):
        each value is compared with the running extreme of those before it, as the rule does
        one at a time; with a ``min_delta`` the rule's best moves in jumps: one at a time."""
        rule: Improvement = state["rule"]
        if self.min_delta != 0.0:
            return super()._check_column(key, state, steps, values, active)
        v = np.asarray(values, dtype=np.float64)
        where = np.flatnonzero(~np.isnan(v))  # NaN neither counts nor resets
        f = v[where]
        if not len(f):
            return [], False
        lower = rule.mode == "min"
        extreme = np.minimum.accumulate(f) if lower else np.maximum.accumulate(f)
        prior = np.empty_like(f)
        prior[1:] = extreme[:-1]
        if rule.best is None:
            better = np.empty(len(f), dtype=bool)
            better[0] = True  # the first value is the best so far
            better[1:] = f[1:] < prior[1:] if lower else f[1:] > prior[1:]
        else:
            prior[0] = rule.best
            prior[1:] = (np.minimum if lower else np.maximum)(prior[1:], rule.best)
            better = f < prior if lower else f > prior
        n = np.arange(len(f))
        last = np.maximum.accumulate(np.where(better, n, -1))  # the latest improvement so far
        since = np.where(last >= 0, n - last, state["since"] + n + 1)
        starts, still = episode_starts(since >= self.patience, where, len(v), active)
        f_steps = np.asarray(steps)[where]
        found = []
        for i, j in starts:
            k = int(last[j])
            best, best_step = (float(f[k]), int(f_steps[k])) if k >= 0 else (rule.best,
                                                                              rule.best_step)
            found.append((i, self._plateau(key, int(steps[i]), float(v[i]), int(since[j]),
                                           best, best_step)))
        k = int(last[-1])
        if k >= 0:
            rule.best, rule.best_step = float(f[k]), int(f_steps[k])
        rule._seen += len(f)
        state["since"] = int(since[-1])
        return found, still

    def _plateau(self, key: str, step: int, value: float, since: int, best: float | None,
                 best_step: int | None) -> Finding:
        assert best is not None
        return self._finding(
            key, step,
            f"{key} has not improved for {since} {self.unit} "
            f"(best {fmt(best)} at step {best_step})",
            evaluations=since, best=best, best_step=best_step, value=value,
            patience=self.patience,
        )

    def _dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"rule": state["rule"].state_dict(), "since": state["since"]}

    def _load_state(self, key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        state = self._new_state(key)
        state["rule"].load_state_dict(raw["rule"])
        state["since"] = int(raw["since"])
        return state
