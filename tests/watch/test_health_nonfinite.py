"""NonFiniteDetector: NaN/inf values, one finding per run of non-finite values."""

from __future__ import annotations

import math

import pytest

from loopwise.watch.health.nonfinite import NonFiniteDetector


def test_fires_at_the_first_nan_and_once_per_episode():
    d = NonFiniteDetector()
    values = [1.0, 0.9, math.nan, math.nan, math.inf, 0.8, -math.inf, 0.7]
    steps = []
    for i, v in enumerate(values):
        steps += [(f.step, f.key) for f in d.update(i, {"loss": v, "acc": 0.5})]
    assert steps == [(2, "loss"), (6, "loss")]


def test_finding_is_an_error_with_json_safe_data():
    (f,) = NonFiniteDetector().update(7, {"loss": math.nan})
    assert f.level == "error" and f.kind == "health.nonfinite"
    assert f.message.startswith("loss is nan at step 7")
    assert f.event_data() == {"key": "loss", "step": 7, "value": None, "occurrences": 1}


def test_silent_on_finite_values_and_on_other_keys():
    d = NonFiniteDetector(keys="*loss")
    for i in range(100):
        assert d.update(i, {"loss": 1.0 / (i + 1), "grad_norm": math.inf}) == []


def test_keys_are_tracked_separately():
    d = NonFiniteDetector()
    assert [f.key for f in d.update(0, {"a": math.nan, "b": 1.0})] == ["a"]
    assert [f.key for f in d.update(1, {"a": math.nan, "b": math.inf})] == ["b"]
    assert d.active == {"a", "b"}


def test_state_round_trip_keeps_the_episode():
    d = NonFiniteDetector()
    d.update(0, {"loss": math.nan})
    e = NonFiniteDetector()
    e.load_state_dict(d.state_dict())
    assert e.update(1, {"loss": math.nan}) == []


def test_invalid_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="streams must name one or more of"):
        NonFiniteDetector(streams=())
    with pytest.raises(ValueError, match="level must be one of"):
        NonFiniteDetector(level="fatal")
