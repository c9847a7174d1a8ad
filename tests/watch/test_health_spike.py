"""SpikeDetector: robust z-score (median/MAD) over a window of recent values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.watch.health.spike import SpikeDetector, robust_z


def noisy_loss(n, seed, sigma=0.1):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.2 + 2.0 * np.exp(-t / 300)) * np.exp(rng.normal(0, sigma, n))


def feed(detector, values, key="loss"):
    out = []
    for i, v in enumerate(values):
        out.extend(detector.update(i, {key: float(v)}))
    return out


def test_robust_z_known_value():
    assert robust_z([1, 2, 3, 4, 5], 10) == pytest.approx(0.6745 * 7)
    assert robust_z([1, 2, 3, 4, 5], 3) == 0


def test_fires_at_the_planted_spike_only():
    values = noisy_loss(1000, seed=1)
    values[600] *= 5
    found = feed(SpikeDetector(), values)
    assert [f.step for f in found] == [600]
    assert found[0].message.startswith("loss spiked to")
    assert found[0].data["z"] > 8


@pytest.mark.parametrize("seed", range(5))
def test_silent_on_noisy_but_healthy_curves(seed):
    assert feed(SpikeDetector(), noisy_loss(2000, seed)) == []


def test_a_spike_lasting_two_steps_is_one_episode_and_the_next_spike_another():
    values = list(noisy_loss(400, seed=3))
    values[200] = values[201] = values[199] * 6
    values[300] = values[299] * 6
    assert [f.step for f in feed(SpikeDetector(), values)] == [200, 300]


def test_nothing_is_judged_before_min_history_values():
    values = [1.0] * 5 + [100.0]
    assert feed(SpikeDetector(min_history=10, window=20), values) == []
    assert [f.step for f in feed(SpikeDetector(min_history=5, window=20), values)] == [5]


def test_a_drop_is_not_a_spike_and_non_finite_values_are_skipped():
    values = list(noisy_loss(200, seed=4))
    values[150] = values[149] / 10
    values[160] = math.nan
    values[170] = math.inf
    assert feed(SpikeDetector(), values) == []


def test_default_keys_are_losses():
    d = SpikeDetector(min_history=3, window=5)
    for i in range(5):
        d.update(i, {"loss": 1.0, "lr": 1.0})
    assert [f.key for f in d.update(5, {"loss": 50.0, "lr": 50.0})] == ["loss"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"window": 0}, "window must be an int >= 1, got 0"),
    ({"window": 2, "min_history": 2}, "window must hold at least 3 values"),
    ({"threshold": 0}, "threshold must be a finite number > 0"),
    ({"threshold": -2.0}, "threshold must be a finite number > 0"),
    ({"min_history": 60}, r"min_history \(60\) cannot exceed window \(50\)"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpikeDetector(**kwargs)


def test_robust_z_needs_history():
    with pytest.raises(ValueError, match="at least one value"):
        robust_z([], 1.0)
