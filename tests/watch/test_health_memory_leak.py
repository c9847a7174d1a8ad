"""MemoryLeakDetector: memory growing at every epoch for K epochs."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.watch.health.memory_leak import MemoryLeakDetector


def feed(detector, values, key="proc_rss_mib"):
    out = []
    for i, v in enumerate(values):
        out.extend(detector.update(i, {key: float(v)}))
    return out


def test_fires_after_five_epochs_of_growth():
    rss = [1000.0, 1500.0, 1502.0, 1501.0] + [1501.0 + 8 * k for k in range(1, 10)]
    found = feed(MemoryLeakDetector(), rss)
    # growth at epochs 4..8 (five in a row) -> fires at epoch 8
    assert [f.step for f in found] == [8]
    assert found[0].data["growth_per_epoch"] == pytest.approx(8.0)
    assert "a memory leak?" in found[0].message


def test_watches_torch_allocated_memory_of_each_gpu():
    d = MemoryLeakDetector(epochs=2, warmup=0)
    found = []
    for i in range(4):
        found += d.update(i, {"gpu1_torch_alloc_mib": 100.0 + 50 * i, "gpu1_temp_c": 60.0 + i})
    assert [(f.step, f.key) for f in found] == [(2, "gpu1_torch_alloc_mib")]


@pytest.mark.parametrize("seed", range(5))
def test_silent_on_a_flat_fluctuating_process(seed):
    rng = np.random.default_rng(seed)
    rss = np.concatenate([[500.0, 2000.0, 2300.0], 2300 + rng.normal(0, 3, 60)])
    assert feed(MemoryLeakDetector(), rss) == []


def test_warmup_growth_is_ignored():
    rss = [100.0, 200.0, 300.0, 300.0, 300.0, 300.0, 300.0]
    assert feed(MemoryLeakDetector(epochs=2, warmup=3), rss) == []
    assert [f.step for f in feed(MemoryLeakDetector(epochs=2, warmup=0), rss)] == [2]


def test_growth_below_min_growth_does_not_count():
    rss = [100.0 + 0.5 * i for i in range(20)]
    assert feed(MemoryLeakDetector(), rss) == []
    assert feed(MemoryLeakDetector(min_growth=0.1), rss)[0].step == 6


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"min_growth": -1.0}, "min_growth must be a finite number >= 0"),
    ({"warmup": -1}, r"warmup must be an int >= 0 \(epochs ignored\), got -1"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MemoryLeakDetector(**kwargs)
