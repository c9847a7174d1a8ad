"""StalledDetector: no step for T seconds of sample time."""

from __future__ import annotations

import pytest

from loopwise.watch.health.stalled import StalledDetector


def feed(detector, rates, dt=2.0):
    out = []
    for i, r in enumerate(rates):
        out.extend(detector.update(i, {"steps_per_s": r}, time=dt * i))
    return out


def test_fires_when_no_step_for_the_given_seconds():
    rates = [10.0] * 51 + [0.0] * 200  # last step seen in the sample at t = 100 s
    found = feed(StalledDetector(seconds=300), rates)
    assert [f.time for f in found] == [400.0]
    assert found[0].message.startswith("no training step for 300 s while the run is running")


def test_a_stall_before_the_first_step_counts_from_the_first_sample():
    found = feed(StalledDetector(seconds=10), [0.0] * 10)
    assert [f.time for f in found] == [10.0]


def test_steps_resuming_end_the_episode_and_a_new_stall_is_reported_again():
    rates = [0.0] * 10 + [5.0] + [0.0] * 10  # a step in the sample at t = 20 s
    assert [f.time for f in feed(StalledDetector(seconds=10), rates)] == [10.0, 30.0]


def test_silent_while_steps_continue_and_over_short_pauses():
    rates = ([10.0] * 30 + [0.0] * 30) * 10  # 60 s pauses (validation) between epochs
    assert feed(StalledDetector(seconds=300), rates) == []


def test_silent_without_loop_statistics():
    d = StalledDetector(seconds=1)
    assert d.update(1, {"cpu_pct": 3.0}, time=100.0) == []


def test_needs_the_sample_time():
    with pytest.raises(ValueError, match="needs the sample time"):
        StalledDetector().update(1, {"steps_per_s": 0.0})


@pytest.mark.parametrize("seconds", [0, -5, float("inf"), "300"])
def test_invalid_seconds_are_clear_errors(seconds):
    error = TypeError if isinstance(seconds, str) else ValueError  # the type, or the value
    with pytest.raises(error, match="seconds must be a finite number > 0, got "):
        StalledDetector(seconds=seconds)
