"""Warn (as run events) about a plateau, a rising loss and a widening train/val gap.

The decisions are the health detectors' (``loopwise.watch.health``: ``PlateauDetector``,
``TrendDetector``, ``OverfittingDetector``); this callback feeds them each evaluation's
metrics and keeps their state across a resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TextIO

from loopwise.train.callbacks.base import Callback, LoopState, require_keys
from loopwise.watch.health import (
    Finding,
    HealthMonitor,
    OverfittingDetector,
    PlateauDetector,
    TrendDetector,
)
from loopwise.watch.health.runner import attached_health_monitor


class TrendWatcher(Callback):
    """Record a warning event when

    * ``monitor`` has not improved for ``patience`` evaluations ("val_loss has not improved
      for 8 epochs"),
    * ``train_key`` (or ``monitor``) got worse ``rising`` evaluations in a row ("train_loss
      rising for 3 epochs"),
    * the gap between ``val_key`` and ``train_key`` widened for ``gap_epochs`` evaluations
      while ``val_key`` did not improve ("train/val gap widening").

    Each problem is reported once per episode (event kind ``health.<detector>``) and printed
    once to ``console`` (``"stderr"`` by default, None for silence). ``mode="auto"`` reads the
    name: accuracies are maximised, everything else minimised.
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 8,
                 train_key: str = "train_loss", val_key: str = "val_loss", rising: int = 3,
                 gap_epochs: int = 3, mode: str = "auto", min_delta: float = 0.0,
                 console: TextIO | Literal["stderr"] | None = "stderr") -> None:
        trend_keys = list(dict.fromkeys((train_key, monitor)))
        self.health = HealthMonitor(None, console=console, detectors=[
            PlateauDetector(monitor, patience=patience, mode=mode, min_delta=min_delta),
            TrendDetector(trend_keys, epochs=rising, mode=mode, min_delta=min_delta),
            OverfittingDetector(train_key=train_key, val_key=val_key, epochs=gap_epochs,
                                mode=mode, min_delta=min_delta),
        ])

    @property
    def findings(self) -> list[Finding]:
        """Every warning raised in this process, in order."""
        return self.health.findings

    def on_evaluate(self, state: LoopState) -> None:
        run_health = attached_health_monitor(state.run)
        if run_health is not None:  # the run's defaults would repeat these warnings
            run_health.remove_detectors(("plateau", "trend", "overfitting"))
        self.health.run = state.run
        self.health.observe_epoch(state.epoch, state.metrics,
                                  step=None if state.run is None else state.run.global_step or None)

    def state_dict(self) -> dict[str, Any]:
        return {"health": self.health.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        require_keys("TrendWatcher", state, ("health",))
        self.health.load_state_dict(state["health"])
