"""InputBoundDetector: the data-wait share above a threshold over a window of samples."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.watch.health.input_bound import InputBoundDetector


def feed(detector, shares, extra=None):
    out = []
    for i, s in enumerate(shares, 1):
        out.extend(detector.update(i, {"data_wait_pct": float(s), **(extra or {})}, time=2.0 * i))
    return out


def test_fires_when_the_window_mean_crosses_the_threshold():
    shares = [5.0] * 20 + [50.0] * 10
    # window of 5: mean after k high samples = (50k + 5(5-k))/5 > 20  <=>  k >= 2: sample 22
    found = feed(InputBoundDetector(), shares)
    assert [f.step for f in found] == [22]
    assert found[0].time == 44.0
    assert found[0].message.startswith("the CPU is waiting for data: ")
    assert found[0].message.endswith("raise num_workers")


def test_message_names_the_gpu_when_gpu_samples_are_present():
    found = feed(InputBoundDetector(window=2), [60.0, 60.0], extra={"gpu0_util_pct": 10.0})
    assert "the GPU is waiting for data" in found[0].message
    assert found[0].message.endswith("raise num_workers or pin_memory")


@pytest.mark.parametrize("seed", range(5))
def test_silent_on_a_healthy_noisy_loader(seed):
    rng = np.random.default_rng(seed)
    shares = np.clip(rng.normal(8, 4, 500), 0, 100)
    assert feed(InputBoundDetector(), shares) == []


def test_recovery_ends_the_episode():
    shares = [50.0] * 5 + [1.0] * 10 + [50.0] * 5
    # samples 16, 17 are high again: (2 * 50 + 3 * 1) / 5 = 20.6% > 20% at sample 17
    assert [f.step for f in feed(InputBoundDetector(), shares)] == [5, 17]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"threshold_pct": 0}, r"threshold_pct must be a finite number in \(0, 100\) \(a percentage\), got 0"),
    ({"threshold_pct": 100}, r"threshold_pct must be a finite number in \(0, 100\) \(a percentage\), got 100"),
    ({"threshold_pct": -5}, r"threshold_pct must be a finite number in \(0, 100\) \(a percentage\), got -5"),
    ({"window": 0}, "window must be an int >= 1, got 0"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InputBoundDetector(**kwargs)
