"""TrendDetector: fires when a metric got worse `epochs` times in a row."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.watch.health.trend import TrendDetector


def feed(detector, key, values):
    out = []
    for i, v in enumerate(values):
        out.extend(detector.update(i, {key: float(v)}))
    return out


def test_fires_on_the_third_consecutive_rise():
    values = [1.0 - 0.05 * i for i in range(11)] + [0.5 + 0.05 * i for i in range(1, 8)]
    found = feed(TrendDetector("train_loss"), "train_loss", values)
    assert [f.step for f in found] == [13]
    assert found[0].message == "train_loss rising for 3 epochs (0.5 -> 0.65)"
    assert found[0].kind == "health.trend"


def test_two_rises_then_a_drop_is_silent_and_a_new_run_of_rises_is_a_new_episode():
    values = [1.0, 1.1, 1.2, 1.0, 1.1, 1.2, 1.3, 1.4, 1.0, 1.1, 1.2, 1.3]
    found = feed(TrendDetector("loss"), "loss", values)
    assert [f.step for f in found] == [6, 11]


@pytest.mark.parametrize("seed", range(10))
def test_silent_on_noisy_but_decreasing_curves(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(50)
    values = 1 / (1 + 0.2 * t) + rng.normal(0, 0.003, t.size)
    assert feed(TrendDetector("val_loss"), "val_loss", values) == []


def test_a_falling_accuracy_is_the_bad_direction():
    values = [0.5, 0.6, 0.7, 0.65, 0.6, 0.55]
    found = feed(TrendDetector("val_acc"), "val_acc", values)
    assert [f.step for f in found] == [5]
    assert found[0].message.startswith("val_acc falling for 3 epochs")
    assert feed(TrendDetector("val_acc", mode="min"), "val_acc", [0.1, 0.2, 0.3, 0.4])[0].step == 3


def test_min_delta_ignores_tiny_rises():
    values = [1.0, 1.001, 1.002, 1.003, 1.004]
    assert feed(TrendDetector("loss", min_delta=0.01), "loss", values) == []
    assert [f.step for f in feed(TrendDetector("loss"), "loss", values)] == [3]


def test_default_keys_watch_every_loss():
    d = TrendDetector()
    for i in range(4):
        found = d.update(i, {"train_loss": 1.0 + i, "val_loss": 2.0 + i, "val_acc": 0.5})
    assert sorted(f.key for f in found) == ["train_loss", "val_loss"]


def test_non_finite_values_are_skipped():
    values = [1.0, 1.1, float("nan"), 1.2, float("inf"), 1.3]
    assert [f.step for f in feed(TrendDetector("loss"), "loss", values)] == [5]


def test_state_round_trip():
    d = TrendDetector("loss")
    feed(d, "loss", [1.0, 1.1, 1.2])
    e = TrendDetector("loss")
    e.load_state_dict(d.state_dict())
    assert [f.step for f in e.update(3, {"loss": 1.3})] == [3]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"min_delta": float("nan")}, "min_delta must be a finite number >= 0"),
    ({"mode": "down"}, "mode must be one of"),
    ({"keys": []}, "keys must be a metric name"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrendDetector(**kwargs)
