"""Lower the learning rate when a monitored metric stops improving (Keras semantics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise.train.callbacks.base import Callback, LoopState, monitored_value, require_keys
from loopwise.train.callbacks.early_stopping import check_patience
from loopwise.utils.validate import check_float, check_non_negative
from loopwise.watch.improvement import Improvement


class ReduceLROnPlateau(Callback):
    """Multiply every param group's LR by ``factor`` after ``patience`` evaluations without an
    improvement of ``monitor`` (by more than ``min_delta``), never below ``min_lr``; then wait
    ``cooldown`` evaluations before counting again. Each reduction is a ``lr_reduced`` event.
    ``mode="auto"`` (the default) maximises accuracy-like names and minimises the rest (the
    list: :mod:`loopwise.watch.improvement`).
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        self.monitor = monitor
        self.factor = check_float(factor, what="factor", minimum=0, maximum=1, open_min=True,
                                  open_max=True, hint="the LR is multiplied by it")
        self.patience = check_patience(patience)
        self.cooldown = check_patience(cooldown, "cooldown")
        self.min_lr = check_non_negative(min_lr, what="min_lr")
        self.improvement = Improvement(mode=mode, monitor=monitor, min_delta=min_delta)
        self.wait = 0
        self.cooldown_counter = 0
        self.reductions = 0

    def on_evaluate(self, state: LoopState) -> None:
        value = monitored_value("ReduceLROnPlateau", self.monitor, state.metrics)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improvement.update(value, state.epoch):
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        if state.optimizer is None:
            raise ValueError("ReduceLROnPlateau needs the optimizer; the loop passed none")
        changes = []
        for i, group in enumerate(state.optimizer.param_groups):
            old = float(group["lr"])
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                group["lr"] = new
                changes.append((i, old, new))
        self.cooldown_counter = self.cooldown
        self.wait = 0
        if changes:
            self.reductions += 1
            text = ", ".join(f"{old:.3g} -> {new:.3g}" for _, old, new in changes)
            message = (f"{self.monitor} has not improved for {self.patience} evaluations: "
                       f"learning rate {text}")
            if state.run is not None:
                state.run.log_event("lr_reduced", message, data={
                    "epoch": state.epoch, "monitor": self.monitor,
                    "groups": [{"group": i, "old": o, "new": n} for i, o, n in changes]})

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "improvement": self.improvement.state_dict(),
                "wait": self.wait, "cooldown_counter": self.cooldown_counter,
                "reductions": self.reductions}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        require_keys("ReduceLROnPlateau", state,
                     ("monitor", "improvement", "wait", "cooldown_counter", "reductions"))
        if state["monitor"] != self.monitor:
            raise ValueError(f"ReduceLROnPlateau state monitors {state['monitor']!r}, this one "
                             f"{self.monitor!r}; pass monitor={state['monitor']!r} to resume")
        self.improvement.load_state_dict(state["improvement"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.reductions = int(state["reductions"])
