"""Record each param group's learning rate at the start of every epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise.train.callbacks.base import Callback, LoopState, require_keys


class LearningRateMonitor(Callback):
    """Log the LR of each param group as scalars at the start of each epoch.

    Keys: ``lr`` for a single group; ``lr/<name>`` (the group's ``"name"`` entry) or
    ``lr/group<i>`` for several. ``history`` keeps ``(epoch, {key: lr})`` for every epoch.
    """

    def __init__(self, *, prefix: str = "lr") -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        self.prefix = prefix
        self.history: list[tuple[int, dict[str, float]]] = []

    def current(self, optimizer: Any) -> dict[str, float]:
        """The LR of every param group of ``optimizer``, keyed as they are logged."""
        groups = optimizer.param_groups
        if len(groups) == 1:
            return {self.prefix: float(groups[0]["lr"])}
        return {f"{self.prefix}/{g.get('name') or f'group{i}'}": float(g["lr"])
                for i, g in enumerate(groups)}

    def on_epoch_begin(self, state: LoopState) -> None:
        if state.optimizer is None:
            raise ValueError("LearningRateMonitor needs the optimizer; the loop passed none")
        values = self.current(state.optimizer)
        self.history.append((state.epoch, values))
        if state.run is not None:
            state.run.log_scalars(values, step=state.step)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [[epoch, dict(values)] for epoch, values in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        require_keys("LearningRateMonitor", state, ("history",))
        self.history = [(int(epoch), {str(k): float(v) for k, v in values.items()})
                        for epoch, values in state["history"]]
