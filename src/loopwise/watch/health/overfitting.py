"""Overfitting: the train/validation gap widening over ``epochs`` evaluations while the
validation metric stopped improving.

The gap is ``val - train`` for a minimised metric (``train - val`` for a maximised one). A gap
that widens while validation still improves is ordinary (training loss falls faster); so this
fires only when, over the last ``epochs`` evaluations, the gap grew at every one of them, grew by
more than ``min_delta`` in all, and the validation metric made no new best (by the shared
:class:`~loopwise.watch.improvement.Improvement` rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from loopwise.utils.validate import check_key, check_non_negative
from loopwise.watch.health.base import (
    Finding,
    check_level,
    check_positive_int,
    check_streams,
    check_unit,
    fmt,
)
from loopwise.watch.improvement import Improvement, check_mode, resolve_mode


class OverfittingDetector:
    """Watches one train/validation pair given together (e.g. at each epoch end).

    Defaults: ``train_key=None``: ``loss`` (the epoch training loss, docs/record.md) when the
    observation has it, else ``train_loss`` (seed 002's name); ``val_key="val_loss"``,
    ``epochs=3``,
    ``mode="auto"`` (from ``val_key``), ``min_delta=0.0``, fed by the ``epoch`` stream.
    An observation lacking either key is ignored.
    """

    name = "overfitting"

    def __init__(self, *, train_key: str | None = None, val_key: str = "val_loss",
                 epochs: int = 3, mode: str = "auto", min_delta: float = 0.0,
                 unit: str = "epochs", streams: Iterable[str] | str = ("epoch",),
                 level: str = "warning") -> None:
        for what, key in (("train_key", train_key), ("val_key", val_key)):
            if key is None and what == "train_key":
                continue
            check_key(key, what=what)  # the one key rule
        if train_key == val_key:
            raise ValueError(f"train_key and val_key must differ, both are {train_key!r}")
        self.train_key = train_key
        self.val_key = val_key
        self.epochs = check_positive_int(epochs, what="epochs")
        self.mode = resolve_mode(check_mode(mode), val_key)
        self.min_delta = check_non_negative(min_delta, what="min_delta")
        self.unit = check_unit(unit)
        self.streams = check_streams(streams)
        self.level = check_level(level)
        self.reset()

    def reset(self) -> None:
        self._rule = Improvement(mode=self.mode)
        self._gaps: list[float] = []
        self._since_best = 0
        self._active = False

    @property
    def active(self) -> frozenset[str]:
        return frozenset({self.val_key}) if self._active else frozenset()

    def needs(self, values: Mapping[str, float]) -> bool:
        """Whether an observation of these names can change anything (both keys of the pair:
        ``update`` ignores the others); the replay of a finished run skips the others."""
        train_key = self.train_key or ("loss" if "loss" in values else "train_loss")
        return train_key in values and self.val_key in values

    def update(self, step: int, values: Mapping[str, float], *,
               time: float | None = None) -> list[Finding]:
        train_key = self.train_key or ("loss" if "loss" in values else "train_loss")
        if train_key not in values or self.val_key not in values:
            return []
        train, val = float(values[train_key]), float(values[self.val_key])
        if not (math.isfinite(train) and math.isfinite(val)):
            return []
        self._since_best = 0 if self._rule.update(val, step) else self._since_best + 1
        gap = val - train if self.mode == "min" else train - val
        self._gaps = [*self._gaps, gap][-(self.epochs + 1):]
        widening = (
            len(self._gaps) == self.epochs + 1
            and all(b > a for a, b in zip(self._gaps, self._gaps[1:], strict=False))
            and self._gaps[-1] - self._gaps[0] > self.min_delta
            and self._since_best >= self.epochs
        )
        if not widening:
            self._active = False
            return []
        if self._active:
            return []
        self._active = True
        assert self._rule.best is not None
        label = (f"{self.val_key} - {train_key}" if self.mode == "min"
                 else f"{train_key} - {self.val_key}")
        message = (
            f"train/val gap widening for {self.epochs} {self.unit}: {label} went "
            f"{fmt(self._gaps[0])} -> {fmt(gap)} while {self.val_key} has not improved since "
            f"step {self._rule.best_step} (best {fmt(self._rule.best)}): overfitting? "
            "consider early stopping or more regularisation"
        )
        data: dict[str, Any] = {"gap_start": self._gaps[0], "gap": gap, "train": train,
                                "val": val, "best": self._rule.best,
                                "best_step": self._rule.best_step, "epochs": self.epochs}
        return [Finding(self.name, self.val_key, step, message, self.level, data, time)]

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self._rule.state_dict(), "gaps": list(self._gaps),
                "since_best": self._since_best, "active": self._active}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name or "rule" not in state:
            raise ValueError(
                f"this is not the state of an {self.name!r} detector "
                f"(got name {state.get('name')!r}); load the states in the order they were saved"
            )
        self._rule.load_state_dict(state["rule"])
        self._gaps = [float(g) for g in state["gaps"]]
        self._since_best = int(state["since_best"])
        self._active = bool(state["active"])
