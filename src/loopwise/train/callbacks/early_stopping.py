"""Stop training when a monitored metric stops improving (Keras ``EarlyStopping`` semantics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise.train.callbacks.base import Callback, LoopState, monitored_value, require_keys
from loopwise.utils.validate import check_int
from loopwise.watch.improvement import Improvement


def check_patience(value: object, what: str = "patience") -> int:
    return check_int(value, what=what, hint="evaluations to wait")


class EarlyStopping(Callback):
    """Request a stop after ``patience`` evaluations without an improvement of ``monitor``.

    An improvement beats the best value by more than ``min_delta``. ``mode="auto"`` (the
    default) reads the name: accuracy-like metrics (``val_acc``, ``val_f1``, ``val_auc``...) are
    maximised, the rest minimised (the list: :mod:`loopwise.watch.improvement`); ``"min"`` and
    ``"max"`` say it outright. With ``restore_best_weights=True`` the model gets the weights of
    the best evaluation back when training stops (they are part of the state, so this survives
    resume).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        self.monitor = monitor
        self.patience = check_patience(patience)
        self.improvement = Improvement(mode=mode, monitor=monitor, min_delta=min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None

    @property
    def best(self) -> float | None:
        return self.improvement.best

    def on_evaluate(self, state: LoopState) -> None:
        value = monitored_value("EarlyStopping", self.monitor, state.metrics)
        if self.improvement.update(value, state.epoch):
            self.wait = 0
            if self.restore_best_weights:
                if state.model is None:
                    raise ValueError("EarlyStopping(restore_best_weights=True) needs the model; "
                                     "the loop passed none")
                self.best_weights = {k: v.detach().clone()
                                     for k, v in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience and self.stop_request is None:
            self.stopped_epoch = state.epoch
            best = self.improvement.best
            best_text = "none yet" if best is None else (
                f"best {best:.6g} at epoch {self.improvement.best_step}")
            reason = (f"{self.monitor} has not improved for {self.wait} evaluations "
                      f"({best_text})")
            if self.restore_best_weights and self.best_weights is not None:
                state.model.load_state_dict(self.best_weights)
                reason += "; restored the best weights"
            self.request_stop(reason)
            if state.run is not None:
                state.run.log_event("early_stopping", reason, data={
                    "monitor": self.monitor, "epoch": state.epoch, "best": best,
                    "best_epoch": self.improvement.best_step})

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "improvement": self.improvement.state_dict(),
                "wait": self.wait, "stopped_epoch": self.stopped_epoch,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        require_keys("EarlyStopping", state,
                     ("monitor", "improvement", "wait", "stopped_epoch", "best_weights"))
        if state["monitor"] != self.monitor:
            raise ValueError(f"EarlyStopping state monitors {state['monitor']!r}, this one "
                             f"{self.monitor!r}; pass monitor={state['monitor']!r} to resume")
        self.improvement.load_state_dict(state["improvement"])
        self.wait = int(state["wait"])
        self.stopped_epoch = state["stopped_epoch"]
        self.best_weights = state["best_weights"]
