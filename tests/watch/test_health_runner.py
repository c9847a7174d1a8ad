"""HealthMonitor (the live runner) and analyze_run (a finished run)."""

from __future__ import annotations

import io
import math

import pytest

from loopwise.record import Run, RunReader
from loopwise.watch.health import (
    HealthMonitor,
    MemoryLeakDetector,
    NonFiniteDetector,
    PlateauDetector,
    SpikeDetector,
    ensure_health_monitor,
)
from loopwise.watch.system import SystemMonitor
from loopwise.watch.system_run import ensure_system_monitor


class FakeRun:
    def __init__(self):
        self.events = []
        self.samples = []
        self.closers = []
        self.closed = False

    def log_event(self, kind, message, *, level="info", data=None):
        self.events.append((kind, level, message, data))

    def log_system(self, values):
        self.samples.append(dict(values))

    def on_close(self, callback):
        self.closers.append(callback)

    def helper(self, kind, factory):
        found = self.__dict__.setdefault("_helpers", {})
        if kind not in found:
            found[kind] = factory()
        return found[kind]

    def find_helper(self, kind):
        return self.__dict__.get("_helpers", {}).get(kind)


def test_a_finding_is_recorded_as_an_event_and_printed_once_per_episode():
    run, console = FakeRun(), io.StringIO()
    health = HealthMonitor(run, detectors=[NonFiniteDetector()], console=console)
    for step, value in enumerate([1.0, math.nan, math.nan, math.nan, 0.5, math.inf]):
        health.observe("loss", step, value)
    assert [(k, lv, d["step"], d["value"]) for k, lv, _, d in run.events] == [
        ("health.nonfinite", "error", 1, None), ("health.nonfinite", "error", 5, None)]
    lines = console.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("loopwise error [nonfinite]: loss is nan at step 1")
    assert [f.step for f in health.findings] == [1, 5]


def test_console_none_is_silent_but_still_records(capsys):
    run = FakeRun()
    HealthMonitor(run, detectors=[NonFiniteDetector()], console=None).observe("l", 0, math.nan)
    assert capsys.readouterr().err == ""
    assert len(run.events) == 1


def test_default_console_is_stderr_at_print_time(capsys):
    HealthMonitor(None, detectors=[NonFiniteDetector()]).observe("loss", 0, math.nan)
    assert "loopwise error [nonfinite]: loss is nan" in capsys.readouterr().err


def test_streams_route_to_the_detectors_that_read_them():
    health = HealthMonitor(None, detectors=[PlateauDetector("loss", patience=2)], console=None)
    for step in range(10):
        health.observe("loss", step, 1.0)  # the step stream: plateau does not read it
    assert health.findings == []
    for epoch in range(3):
        health.observe_epoch(epoch, {"loss": 1.0})
    assert [f.step for f in health.findings] == [2]


def test_epoch_observations_carry_the_latest_system_means():
    health = HealthMonitor(None, detectors=[MemoryLeakDetector(epochs=3, warmup=0)],
                           console=None)
    for epoch in range(5):
        health.observe_system(float(epoch), {"proc_rss_mib": 100.0 + 10 * epoch,
                                             "proc_rss_mib.max": 1e9})
        health.observe_epoch(epoch, {"val_loss": 0.5})
    assert [(f.step, f.key) for f in health.findings] == [(3, "proc_rss_mib")]


def test_system_samples_from_the_sampler_reach_the_runner():
    run = FakeRun()
    health = ensure_health_monitor(run, console=None)
    assert ensure_health_monitor(run) is health

    class Wait:
        name = "loop"

        def read(self):
            return {"data_wait_pct": 80.0}

        def close(self):
            pass

    clock = iter(float(t) / 4 for t in range(1000))
    monitor = SystemMonitor(run, interval=0.25, subsamples=1, sources=[Wait()],
                            clock=lambda: next(clock))
    monitor.subscribe(health.observe_system)
    for _ in range(7):
        monitor.tick()
    kinds = [k for k, *_ in run.events]
    assert kinds == ["health.input_bound"]


def test_ensure_health_monitor_subscribes_to_an_existing_sampler(tmp_path):
    with Run.create(tmp_path, "r") as run:
        system = ensure_system_monitor(run, interval=60.0)
        health = ensure_health_monitor(run, console=None)
        assert health.observe_system in system._subscribers
        system.stop()


def test_state_round_trip_and_mismatch():
    a = HealthMonitor(None, detectors=[PlateauDetector("l", patience=3)], console=None)
    for e in range(3):
        a.observe_epoch(e, {"l": 1.0})
    b = HealthMonitor(None, detectors=[PlateauDetector("l", patience=3)], console=None)
    b.load_state_dict(a.state_dict())
    assert [f.step for f in b.observe_epoch(3, {"l": 1.0})] == [3]
    with pytest.raises(ValueError, match="build the HealthMonitor with the same detectors"):
        HealthMonitor(None, detectors=[SpikeDetector()]).load_state_dict(a.state_dict())


def test_bad_input_is_a_clear_error():
    health = HealthMonitor(None, console=None)
    with pytest.raises(TypeError,
                       match=r"value of 'loss' must be a real number \(int or float\), got str"):
        health.observe("loss", 1, "0.5")
    with pytest.raises(TypeError, match="step must be an int"):
        health.observe("loss", 1.5, 0.5)
    with pytest.raises(ValueError, match="metric name must be a non-empty string"):
        health.observe_many(1, {"": 0.5})
    with pytest.raises(TypeError, match="is not a health detector"):
        HealthMonitor(None, detectors=[object()])
    with pytest.raises(TypeError, match="run must be a loopwise Run"):
        HealthMonitor(object())
    with pytest.raises(TypeError, match="console must be a text stream"):
        HealthMonitor(None, console=42)


def test_a_closed_run_gets_no_event_but_the_finding_is_kept():
    run = FakeRun()
    run.closed = True
    health = HealthMonitor(run, detectors=[NonFiniteDetector()], console=None)
    assert len(health.observe("loss", 0, math.nan)) == 1
    assert run.events == []


def test_events_land_in_a_real_run(tmp_path):
    with Run.create(tmp_path, "live") as run:
        health = HealthMonitor(run, console=None)
        health.observe("loss", 3, math.nan)
    events = RunReader(run.path).events(kind="health.nonfinite")
    assert [(e.level, e.data["step"], e.data["value"]) for e in events] == [("error", 3, None)]


def test_remove_detectors_by_name():
    from loopwise.watch.health import HealthMonitor

    monitor = HealthMonitor(None, console=None)
    removed = monitor.remove_detectors(("plateau", "trend"))
    assert sorted(d.name for d in removed) == ["plateau", "trend"]
    assert "plateau" not in [d.name for d in monitor.detectors]
    assert monitor.remove_detectors("plateau") == []
