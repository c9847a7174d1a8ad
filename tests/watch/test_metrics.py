import math

from hypothesis import given
from hypothesis import strategies as st

from loopwise.watch.metrics import RunningAverages, format_postfix

KEYS = st.sampled_from(["loss", "acc", "lr", "val_loss"])
STEP = st.dictionaries(KEYS, st.floats(-1e6, 1e6, allow_nan=False), max_size=4)


@given(st.lists(STEP, max_size=60))
def test_each_metric_averages_over_its_own_count(steps: list[dict[str, float]]) -> None:
    avg = RunningAverages()
    for values in steps:
        avg.add(values)
    got = avg.averages()
    for key in {k for s in steps for k in s}:
        seen = [s[key] for s in steps if key in s]
        assert math.isclose(got[key], sum(seen) / len(seen), rel_tol=1e-9, abs_tol=1e-6)
        assert avg.counts[key] == len(seen)
    assert set(got) == {k for s in steps for k in s}


def test_nonfinite_counted_and_reported() -> None:
    avg = RunningAverages()
    assert avg.add({"loss": 1.0}) == []
    assert avg.add({"loss": float("nan"), "acc": float("inf")}) == ["loss", "acc"]
    assert avg.nonfinite == {"loss": 1, "acc": 1}
    assert math.isnan(avg.averages()["loss"])


def test_state_round_trip() -> None:
    avg = RunningAverages()
    avg.add({"loss": 2.0})
    other = RunningAverages()
    other.load_state_dict(avg.state_dict())
    other.add({"loss": 4.0})
    assert other.averages() == {"loss": 3.0}


def test_postfix_format() -> None:
    assert format_postfix({"loss": 0.123456, "acc": 12.0, "x": float("nan")}) == (
        "loss=0.1235, acc=12.0000, x=nan"  # an accuracy outside [0, 1] is not a percentage
    )
    assert format_postfix({"acc": 0.9, "grad_accum_steps": 4.0}) == (
        "acc=90.00%, grad_accum_steps=4.0000"
    )
