"""The non-finite loss guard: count NaN/inf losses in a row, stop after ``max_in_row``.

Each non-finite loss makes the engine skip that step (no backward, no optimizer step) and record
an event; :meth:`NonFiniteGuard.observe` returns whether the step may proceed and raises
:class:`NonFiniteLossError` when the limit is reached. A finite loss resets the count.
"""

from __future__ import annotations

from typing import Any

from loopwise.utils.validate import check_count


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss was NaN or infinite too many steps in a row."""


class NonFiniteGuard:
    """Counts consecutive non-finite losses. ``max_in_row=0`` turns the guard off."""

    def __init__(self, max_in_row: int = 5) -> None:
        self.max_in_row = check_count(max_in_row, what="max_in_row", hint="0: off")
        self.in_row = 0
        self.total = 0

    @property
    def enabled(self) -> bool:
        return self.max_in_row > 0

    def observe(self, finite: bool, *, step: int, value: float | None = None) -> bool:
        """Record one loss; True when the step may go on, False when it must be skipped."""
        if finite:
            self.in_row = 0
            return True
        self.in_row += 1
        self.total += 1
        if self.in_row >= self.max_in_row:
            shown = "" if value is None else f" (last value {value})"
            raise NonFiniteLossError(
                f"the loss was NaN or infinite for {self.in_row} steps in a row, up to step "
                f"{step}{shown}; training stopped. Lower the learning rate, enable gradient "
                "clipping (grad_clip), check the inputs for NaN, or raise max_nonfinite"
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"max_in_row": self.max_in_row, "in_row": self.in_row, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("in_row", "total"):
            if key not in state:
                raise KeyError(f"non-finite guard state is missing {key!r}")
        self.in_row = int(state["in_row"])
        self.total = int(state["total"])
