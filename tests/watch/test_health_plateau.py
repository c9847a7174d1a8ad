"""PlateauDetector: fires after `patience` evaluations without improvement, once per episode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.watch.health.plateau import PlateauDetector


def feed(detector, key, values, start=0):
    out = []
    for i, v in enumerate(values, start):
        out.extend(detector.update(i, {key: float(v)}))
    return out


def test_fires_at_the_patience_th_evaluation_without_improvement():
    # improves until step 10, then stays above the best
    values = [1.0 / (1 + i) for i in range(11)] + [0.2] * 20
    found = feed(PlateauDetector("val_loss", patience=5), "val_loss", values)
    assert [f.step for f in found] == [15]
    f = found[0]
    assert f.kind == "health.plateau" and f.key == "val_loss" and f.level == "warning"
    assert f.message.startswith("val_loss has not improved for 5 epochs (best 0.09091 at step 10)")
    assert f.data["best_step"] == 10 and f.data["evaluations"] == 5


def test_silent_on_a_clean_decreasing_curve():
    values = [2 * math.exp(-0.1 * i) + 0.1 for i in range(100)]
    assert feed(PlateauDetector("val_loss", patience=5), "val_loss", values) == []


@pytest.mark.parametrize("seed", range(10))
def test_silent_on_noisy_but_improving_curves(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(60)
    values = 2 * np.exp(-0.05 * t) + 0.1 + rng.normal(0, 0.004, t.size)
    assert feed(PlateauDetector("val_loss", patience=5), "val_loss", values) == []


def test_a_new_plateau_after_an_improvement_is_a_new_episode():
    values = [1.0, 0.5] + [0.6] * 6 + [0.4] + [0.45] * 6
    found = feed(PlateauDetector("val_loss", patience=3), "val_loss", values)
    assert [f.step for f in found] == [4, 11]


def test_accuracy_is_maximised_in_auto_mode():
    values = [0.5, 0.7, 0.8] + [0.79] * 5
    found = feed(PlateauDetector("val_acc", patience=3), "val_acc", values)
    assert [f.step for f in found] == [5]
    rising = [0.5 + 0.01 * i for i in range(10)]
    assert feed(PlateauDetector("val_acc", patience=3), "val_acc", rising) == []


def test_min_delta_ignores_tiny_improvements():
    values = [1.0] + [1.0 - 0.001 * i for i in range(1, 10)]
    assert feed(PlateauDetector("val_loss", patience=4, min_delta=0.01), "val_loss",
                values)[0].step == 4
    assert feed(PlateauDetector("val_loss", patience=4), "val_loss", values) == []


def test_other_keys_are_ignored_and_patterns_match_several():
    d = PlateauDetector(("val_*",), patience=2)
    assert d.update(0, {"train_loss": 1.0, "val_loss": 1.0, "val_mse": 1.0}) == []
    d.update(1, {"val_loss": 1.0, "val_mse": 1.0})
    found = d.update(2, {"val_loss": 1.0, "val_mse": 1.0, "train_loss": 9.0})
    assert sorted(f.key for f in found) == ["val_loss", "val_mse"]
    assert d.active == {"val_loss", "val_mse"}


def test_nan_neither_counts_nor_resets():
    values = [1.0, 0.5, float("nan"), float("nan"), 0.6, 0.6]
    found = feed(PlateauDetector("val_loss", patience=2), "val_loss", values)
    assert [f.step for f in found] == [5]


def test_state_dict_round_trip_gives_the_same_findings():
    values = [1.0 / (1 + i) for i in range(8)] + [0.3] * 10
    whole = feed(PlateauDetector("val_loss", patience=5), "val_loss", values)
    first = PlateauDetector("val_loss", patience=5)
    feed(first, "val_loss", values[:10])
    second = PlateauDetector("val_loss", patience=5)
    second.load_state_dict(first.state_dict())
    resumed = feed(second, "val_loss", values[10:], start=10)
    assert [(f.step, f.message) for f in resumed] == [(f.step, f.message) for f in whole]


def test_load_state_of_another_detector_is_refused():
    with pytest.raises(ValueError, match="not the state of a 'plateau' detector"):
        PlateauDetector().load_state_dict({"name": "trend", "states": {}})


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"patience": 0}, "patience must be an int >= 1, got 0"),
    ({"patience": -3}, "patience must be an int >= 1, got -3"),
    ({"min_delta": -0.1}, "min_delta must be a finite number >= 0"),
    ({"mode": "up"}, "mode must be one of 'min', 'max', 'auto'"),
    ({"keys": ""}, "keys must be a metric name or glob pattern"),
    ({"streams": ("epochs",)}, "streams must name one or more of step, epoch, system"),
    ({"unit": ""}, "unit must be a word"),
    ({"level": "loud"}, "level must be one of debug, info, warning, error"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PlateauDetector(**kwargs)


def test_a_patience_that_is_not_an_int_is_a_type_error():
    with pytest.raises(TypeError, match="patience must be an int, got float"):
        PlateauDetector(patience=2.5)


def test_accuracy_is_maximised_by_default():
    # rising accuracy is progress, not a plateau; a flat one after its best is
    rising = feed(PlateauDetector("val_acc", patience=3), "val_acc", [0.5, 0.6, 0.7, 0.8, 0.9])
    assert rising == []
    flat = feed(PlateauDetector("val_acc", patience=3), "val_acc", [0.5, 0.9, 0.8, 0.85, 0.7])
    assert [f.message for f in flat] == [
        "val_acc has not improved for 3 epochs (best 0.9 at step 1)"]
