from array import array

import pytest

from loopwise.watch.window import take_columns

TIMES = [10.0, 11.0, 12.0, 13.0]  # step start times (perf clock) of window steps 1..4


def _lists(window_columns: dict) -> dict:  # type: ignore[type-arg]
    return {k: tuple(list(part) for part in col) for k, col in window_columns.items()}


def test_one_log_per_step_shares_steps_and_times() -> None:
    pending = {"loss": ([1, 2, 3], [0.5, 0.25, 1]), "acc": ([1, 2, 3], [0.0, 1.0, 0.5])}
    window = take_columns(pending, TIMES, 100, 9.0, 1000.0)
    assert window.uniform
    loss, acc = window.columns["loss"], window.columns["acc"]
    assert loss[0] is acc[0] and loss[1] is acc[1]
    assert _lists(window.columns) == {
        "loss": ([101, 102, 103], [1010.0, 1011.0, 1012.0], [0.5, 0.25, 1.0]),
        "acc": ([101, 102, 103], [1010.0, 1011.0, 1012.0], [0.0, 1.0, 0.5]),
    }
    assert isinstance(loss[2], array) and loss[2].typecode == "d"


@pytest.mark.parametrize("pending", [
    {"loss": ([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]), "val": ([2, 4], [5.0, 6.0])},  # two rates
    {"loss": ([1, 1, 2], [1.0, 2.0, 3.0])},  # two log() calls in one step
    {"loss": ([0, 1], [1.0, 2.0])},  # logged before the window's first step
    {"loss": ([1, 3], [1.0, 2.0])},  # a step without a log()
])
def test_irregular_logging_takes_the_general_path_with_the_same_values(pending: dict) -> None:  # type: ignore[type-arg]
    window = take_columns(pending, TIMES, 100, 9.0, 1000.0)
    assert not window.uniform
    for key, (idx, values) in pending.items():
        steps, wall, got = window.columns[key]
        assert list(steps) == [100 + i for i in idx]
        assert list(wall) == [(TIMES[i - 1] if i else 9.0) + 1000.0 for i in idx]
        assert list(got) == values


def test_an_int_too_big_for_a_float_is_named() -> None:
    with pytest.raises(ValueError, match="metric 'count' has an int too large for a float64"):
        take_columns({"count": ([1], [10**400])}, TIMES, 0, 0.0, 0.0)


def test_an_empty_window_has_no_columns() -> None:
    window = take_columns({}, TIMES, 0, 0.0, 0.0)
    assert window.columns == {} and window.uniform
