"""The non-finite loss guard counts NaN/inf losses in a row and stops with a clear message."""

from __future__ import annotations

import pytest

from loopwise.train.step.nonfinite import NonFiniteGuard, NonFiniteLossError


def test_counts_in_a_row_and_resets_on_a_finite_loss() -> None:
    guard = NonFiniteGuard(3)
    assert guard.observe(False, step=1) is False
    assert guard.observe(False, step=2) is False
    assert guard.observe(True, step=3) is True
    assert (guard.in_row, guard.total) == (0, 2)
    guard.observe(False, step=4)
    guard.observe(False, step=5)
    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite for 3 steps in a row, up to "
                                                 r"step 6 \(last value nan\); training stopped. "
                                                 r"Lower the learning rate"):
        guard.observe(False, step=6, value=float("nan"))


def test_state_round_trip_and_validation() -> None:
    guard = NonFiniteGuard(5)
    guard.observe(False, step=0)
    other = NonFiniteGuard(5)
    other.load_state_dict(guard.state_dict())
    assert (other.in_row, other.total) == (1, 1)
    with pytest.raises(KeyError, match="missing 'in_row'"):
        other.load_state_dict({})
    with pytest.raises(ValueError, match=r"max_in_row must be an int >= 0 \(0: off\), got -1"):
        NonFiniteGuard(-1)
    assert NonFiniteGuard(0).enabled is False
