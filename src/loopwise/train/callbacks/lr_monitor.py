"""Record each param group's learning rate at the start of every epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise.train.callbacks.base import Callback, LoopState, require_keys


class LearningRateMonitor(Callback):
    """Log the LR of each param group as scalars at the start of each epoch.

    Keys: ``lr`` for a single group; ``lr/<name>`` (the group's ``"name"`` entry) or
    ``lr/group<i>`` for several (``docs/record.md``). ``history`` keeps ``(epoch, {key: lr})``
    for every epoch.

    The values are recorded at the run's global step when the epoch begins (the epoch they
    belong to is read from the ``epoch`` series, like every point's). A loop that never advances
    the global step (a Workflow whose ``train_loop`` does not iterate through ``track()``)
    stays at step 0: every epoch's value is then recorded at the epoch's number, the step where
    that Workflow records the epoch's summary, so each one keeps its own point.
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
            at = max(int(getattr(state.run, "global_step", 0)), state.step)
            state.run.log_scalars(values, step=at if at > 0 else max(state.epoch, 0))

    def state_dict(self) -> dict[str, Any]:
        return {"history": [[epoch, dict(values)] for epoch, values in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        require_keys("LearningRateMonitor", state, ("history",))
        self.history = [(int(epoch), {str(k): float(v) for k, v in values.items()})
                        for epoch, values in state["history"]]
