"""The shared detector pieces: Finding, episodes of KeyedDetector, argument checks."""

from __future__ import annotations

import json
import math

import pytest

from loopwise.utils.validate import check_positive
from loopwise.watch.health.base import (
    Detector,
    Finding,
    KeyedDetector,
    check_keys,
    json_safe,
    worse,
)
from loopwise.watch.health.runner import default_detectors


class Above(KeyedDetector):
    """Toy detector: the condition is `value > limit`."""

    name = "above"

    def __init__(self, keys="*", limit=1.0):
        super().__init__(keys, streams="step")
        self.limit = limit

    def _check(self, key, state, step, value):
        state["n"] = state.get("n", 0) + 1
        return self._finding(key, step, f"{key} above") if value > self.limit else None


def test_an_episode_gives_one_finding_and_ends_when_the_condition_clears():
    d = Above()
    steps = [f.step for i, v in enumerate([0, 2, 3, 2, 0, 5]) for f in d.update(i, {"x": v})]
    assert steps == [1, 5]
    assert d.active == {"x"}


def test_time_is_attached_when_given():
    (f,) = Above().update(3, {"x": 9.0}, time=12.5)
    assert f.time == 12.5 and f.kind == "health.above"


def test_patterns_and_state_round_trip():
    d = Above(keys=("val_*", "loss"))
    assert d.matches("val_acc") and d.matches("loss") and not d.matches("train_loss")
    d.update(0, {"val_a": 2.0, "other": 5.0})
    e = Above(keys=("val_*", "loss"))
    e.load_state_dict(json.loads(json.dumps(d.state_dict())))
    assert e.update(1, {"val_a": 3.0}) == []  # still in the same episode
    assert e.state_dict()["states"] == {"val_a": {"n": 2}}
    e.reset()
    assert e.active == frozenset()


def test_event_data_is_json_safe():
    f = Finding("x", "loss", 3, "m", data={"v": math.nan, "vals": [math.inf, 1.0],
                                          "nested": {"w": -math.inf}})
    data = f.event_data()
    assert json.loads(json.dumps(data, allow_nan=False)) == {
        "key": "loss", "step": 3, "v": None, "vals": [None, 1.0], "nested": {"w": None}}
    assert json_safe((1.0, 2)) == [1.0, 2]


def test_every_default_detector_follows_the_protocol_with_a_unique_name():
    detectors = default_detectors()
    assert all(isinstance(d, Detector) for d in detectors)
    names = [d.name for d in detectors]
    assert len(set(names)) == len(names) == 8


def test_worse():
    assert worse(1.0, 1.2, mode="min", min_delta=0.1)
    assert not worse(1.0, 1.05, mode="min", min_delta=0.1)
    assert worse(0.9, 0.8, mode="max", min_delta=0.0)


def test_checks_name_the_argument():
    with pytest.raises(ValueError, match="keys must be a metric name or glob pattern"):
        check_keys(["loss", 3])
    with pytest.raises(TypeError, match="threshold must be a finite number > 0, got bool"):
        check_positive(True, what="threshold")
    with pytest.raises(ValueError, match="threshold must be a finite number > 0, got nan"):
        check_positive(float("nan"), what="threshold")
