"""The column path of the health detectors (``update_column``, what ``loopwise doctor`` replays a
finished run with) gives the same findings, and leaves the same state, as feeding the same
points one at a time (``update``, the live path)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwise.watch.health import (
    InputBoundDetector,
    MemoryLeakDetector,
    NonFiniteDetector,
    PlateauDetector,
    SpikeDetector,
    TrendDetector,
)


def _makers():
    return {
        "nonfinite": lambda: NonFiniteDetector(),
        "spike": lambda: SpikeDetector(),
        "spike_small": lambda: SpikeDetector(window=5, min_history=3, threshold=3.0),
        "spike_odd": lambda: SpikeDetector(window=7, min_history=7, threshold=2.0),
        "plateau": lambda: PlateauDetector(keys="*loss", patience=3),
        "plateau_delta": lambda: PlateauDetector(keys="*loss", patience=2, min_delta=0.01),
        "plateau_max": lambda: PlateauDetector(keys="*loss", mode="max", patience=4),
        "trend": lambda: TrendDetector(epochs=2),
        "trend_max": lambda: TrendDetector(epochs=3, mode="max", min_delta=0.001),
        "memory_leak": lambda: MemoryLeakDetector(keys="*loss", epochs=2, warmup=1),
        "input_bound": lambda: InputBoundDetector(keys="*loss", window=3, threshold_pct=50),
    }


def _plain(found):
    """Findings as comparable text (``repr``: exact for floats, and NaN equals NaN)."""
    return [(i, repr(f)) for i, f in found]


def _one_at_a_time(detector, key, steps, values, times):
    found = []
    for i, (s, v, t) in enumerate(zip(steps, values, times, strict=True)):
        found += [(i, f) for f in detector.update(int(s), {key: float(v)}, time=float(t))]
    return found


def _in_chunks(detector, key, steps, values, times, cuts):
    found = []
    bounds = [0, *sorted(cuts), len(values)]
    for a, b in itertools.pairwise(bounds):
        found += [(a + i, f) for i, f in detector.update_column(
            key, steps[a:b], values[a:b], times=times[a:b])]
    return found


def _series(rng, n, *, spikes, nans, plateaus):
    steps = np.arange(1, n + 1, dtype=np.int64)
    values = 1.0 / (1 + steps * 1e-3) + rng.normal(0, 0.01, n)
    for _ in range(plateaus):  # flat stretches (a zero MAD; a metric that stopped improving)
        a = int(rng.integers(0, n))
        values[a:a + int(rng.integers(5, 80))] = values[a]
    for _ in range(spikes):
        values[int(rng.integers(0, n))] += float(rng.choice([0.5, 5.0, 50.0]))
    for _ in range(nans):
        values[int(rng.integers(0, n))] = float(rng.choice([math.nan, math.inf, -math.inf]))
    return steps, values, 1.7e9 + steps * 1e-3


@pytest.mark.parametrize("name", list(_makers()))
@pytest.mark.parametrize("seed", range(6))
def test_a_column_gives_the_findings_and_state_of_one_point_at_a_time(name, seed):
    rng = np.random.default_rng(seed)
    steps, values, times = _series(rng, 3_000, spikes=12, nans=6, plateaus=6)
    make = _makers()[name]
    live, batch = make(), make()
    expected = _one_at_a_time(live, "loss", steps, values, times)
    cuts = rng.integers(0, len(values), size=int(rng.integers(0, 5))).tolist()
    got = _in_chunks(batch, "loss", steps, values, times, cuts)
    assert _plain(got) == _plain(expected)
    assert repr(batch.state_dict()) == repr(live.state_dict())
    assert batch.active == live.active
    if name.startswith("spike") or name == "nonfinite":
        assert expected  # the fixture plants what the detector finds


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(
    st.floats(-3, 3, allow_nan=False), st.sampled_from([0.0, 1.0, 100.0, math.nan, math.inf]),
), max_size=120), cut=st.integers(0, 120), name=st.sampled_from(sorted(_makers())))
def test_any_series_gives_the_same_findings_in_a_column(values, cut, name):
    make = _makers()[name]
    steps = np.arange(len(values), dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    times = steps * 0.5
    live, batch = make(), make()
    expected = _one_at_a_time(live, "val_loss", steps, v, times)
    got = _in_chunks(batch, "val_loss", steps, v, times, [min(cut, len(values))])
    assert _plain(got) == _plain(expected)
    assert repr(batch.state_dict()) == repr(live.state_dict())


def test_a_key_the_detector_does_not_watch_gives_nothing():
    d = SpikeDetector()
    assert d.update_column("accuracy", [1, 2], np.array([1.0, 99.0])) == []
    assert d.state_dict()["states"] == {}
