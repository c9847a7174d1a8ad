"""Stalled training: no step for ``seconds`` while the run is running.

Fed by the system sampler, whose samples carry ``steps_per_s`` once a TrainingMonitor's loop
statistics are attached (and only while the run is open: the sampler stops with it). The clock
is the sample's ``time``. Fires when ``steps_per_s`` has been 0 for ``seconds``; the next step
ends the episode. Without ``steps_per_s`` (no loop attached) it stays silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from loopwise.utils.validate import check_key, check_positive
from loopwise.watch.health.base import (
    Finding,
    check_level,
    check_streams,
)

STEPS_KEY = "steps_per_s"


class StalledDetector:
    """Fires when no training step happened for ``seconds`` (default 300) of sample time."""

    name = "stalled"

    def __init__(self, *, seconds: float = 300.0, key: str = STEPS_KEY,
                 streams: Iterable[str] | str = ("system",), level: str = "warning") -> None:
        self.seconds = check_positive(seconds, what="seconds")
        self.key = check_key(key, what="key (the name of the steps/s series)")
        self.streams = check_streams(streams)
        self.level = check_level(level)
        self.reset()

    def reset(self) -> None:
        self._last_progress: float | None = None
        self._active = False

    @property
    def active(self) -> frozenset[str]:
        return frozenset({self.key}) if self._active else frozenset()

    def needs(self, values: Mapping[str, float]) -> bool:
        """Whether an observation of these names can change anything (``update`` ignores a
        sample without the steps/s series); the replay of a finished run skips the others."""
        return self.key in values

    def update(self, step: int, values: Mapping[str, float], *,
               time: float | None = None) -> list[Finding]:
        if self.key not in values:
            return []
        if time is None:
            raise ValueError("the stalled detector needs the sample time: update(..., time=t)")
        if values[self.key] > 0 or self._last_progress is None:
            self._last_progress = time
        idle = time - self._last_progress
        if values[self.key] > 0 or idle < self.seconds:
            self._active = False
            return []
        if self._active:
            return []
        self._active = True
        return [Finding(
            self.name, self.key, step,
            f"no training step for {idle:.0f} s while the run is running: stuck? (a hung "
            "DataLoader worker, a deadlock, a hung collective, or a long pause outside the loop)",
            self.level, {"idle_s": idle, "seconds": self.seconds}, time,
        )]

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "last_progress": self._last_progress, "active": self._active}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"this is not the state of a {self.name!r} detector "
                f"(got name {state.get('name')!r}); load the states in the order they were saved"
            )
        # Sample times do not survive a restart meaningfully: a resumed run starts afresh.
        self.reset()
