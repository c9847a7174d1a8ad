"""OverfittingDetector: the train/val gap widening while validation stopped improving."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.watch.health.overfitting import OverfittingDetector


def feed(detector, train, val, train_key="loss", val_key="val_loss"):
    out = []
    for i, (t, v) in enumerate(zip(train, val, strict=True)):
        out.extend(detector.update(i, {train_key: float(t), val_key: float(v)}))
    return out


def planted(epochs=30, turn=15):
    train = [math.exp(-0.1 * i) for i in range(epochs)]
    val = [math.exp(-0.1 * i) + 0.1 if i <= turn else
           math.exp(-0.1 * turn) + 0.1 + 0.02 * (i - turn) for i in range(epochs)]
    return train, val


def test_fires_k_epochs_after_validation_turned_up():
    train, val = planted()
    found = feed(OverfittingDetector(), train, val)
    assert [f.step for f in found] == [18]
    f = found[0]
    assert f.kind == "health.overfitting" and f.key == "val_loss"
    assert f.message.startswith("train/val gap widening for 3 epochs: val_loss - loss")
    assert "has not improved since step 15" in f.message
    assert f.data["best_step"] == 15


def test_silent_when_the_gap_widens_but_validation_still_improves():
    train = [math.exp(-0.2 * i) for i in range(40)]
    val = [math.exp(-0.05 * i) + 0.1 for i in range(40)]
    assert feed(OverfittingDetector(), train, val) == []


@pytest.mark.parametrize("seed", range(10))
def test_silent_on_noisy_but_healthy_curves(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(50)
    train = 1 / (1 + 0.3 * t) + rng.normal(0, 0.003, t.size)
    val = 1 / (1 + 0.2 * t) + 0.05 + rng.normal(0, 0.003, t.size)
    assert feed(OverfittingDetector(), train, val) == []


def test_accuracy_pair_uses_train_minus_val():
    epochs = 20
    train = [0.5 + 0.02 * i for i in range(epochs)]
    val = [0.5 + 0.02 * i if i <= 10 else 0.7 - 0.01 * (i - 10) for i in range(epochs)]
    found = feed(OverfittingDetector(train_key="train_acc", val_key="val_acc"), train, val,
                 "train_acc", "val_acc")
    assert [f.step for f in found] == [13]
    assert "train_acc - val_acc" in found[0].message


def test_observations_without_both_keys_are_ignored():
    d = OverfittingDetector()
    assert d.update(0, {"train_loss": 1.0}) == []
    assert d.update(1, {"val_loss": 1.0}) == []
    assert d.state_dict()["gaps"] == []


def test_state_round_trip_gives_the_same_finding():
    train, val = planted()
    first = OverfittingDetector()
    feed(first, train[:17], val[:17])
    second = OverfittingDetector()
    second.load_state_dict(first.state_dict())
    found = second.update(17, {"loss": train[17], "val_loss": val[17]})
    assert found == []
    found = second.update(18, {"loss": train[18], "val_loss": val[18]})
    assert [f.step for f in found] == [18]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"train_key": "loss", "val_key": "loss"}, "must differ"),
    ({"val_key": ""}, "val_key must be a non-empty string"),
    ({"min_delta": -1}, "min_delta must be a finite number >= 0"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OverfittingDetector(**kwargs)
