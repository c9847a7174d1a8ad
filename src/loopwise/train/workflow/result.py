"""What ``Workflow.run()`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loopwise.train.callbacks.base import StopRequest


@dataclass
class WorkflowResult:
    """What ``Workflow.run()`` did. ``status``: ``finished`` (all epochs), ``stopped`` (a
    callback asked), or ``already_finished`` (nothing to do)."""

    path: Path
    status: str
    epochs_done: int
    stop: StopRequest | None = None
    history: list[dict[str, float]] = field(default_factory=list)
