"""HostSource (psutil) and LoopSource (TrainingMonitor's loop statistics)."""

from __future__ import annotations

from collections import namedtuple

import psutil
import pytest

from loopwise.watch.sources import HostSource, LoopSource, Source, SourceError

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait guest guest_nice")


class FakePsutil:
    Error = psutil.Error

    def __init__(self, times, fail=False):
        self.times = list(times)
        self.fail = fail

    def cpu_times(self):
        return self.times.pop(0)

    def virtual_memory(self):
        return type("VM", (), {"percent": 42.5})()

    def Process(self, pid=None):  # psutil's name
        fake = self

        class P:
            def cpu_percent(self, interval=None):
                return 150.0

            def memory_info(self):
                if fake.fail:
                    raise psutil.NoSuchProcess(1)
                return type("MI", (), {"rss": 3 * 2**20})()

        return P()


def test_host_source_computes_cpu_share_from_cpu_time_deltas():
    times = [CpuTimes(10, 0, 10, 80, 0, 0, 0),      # baseline at construction
             CpuTimes(40, 0, 20, 130, 10, 5, 0)]    # +30 user (5 of it guest), +10 sys, +60 idle
    src = HostSource(psutil_module=FakePsutil(times))
    # busy = 40 of 100 total (guest is already counted in user)
    assert src.read() == {"cpu_pct": pytest.approx(40.0), "proc_cpu_pct": 150.0,
                          "ram_pct": 42.5, "proc_rss_mib": 3.0}


def test_host_source_failure_is_a_source_error():
    times = [CpuTimes(1, 0, 1, 1, 0, 0, 0)] * 2
    src = HostSource(psutil_module=FakePsutil(times, fail=True))
    with pytest.raises(SourceError, match="psutil failed"):
        src.read()


def test_host_source_with_the_real_psutil():
    src = HostSource()
    assert isinstance(src, Source)
    values = src.read()
    assert set(values) == {"cpu_pct", "proc_cpu_pct", "ram_pct", "proc_rss_mib"}
    assert 0 <= values["cpu_pct"] <= 100 and 0 < values["ram_pct"] <= 100
    assert values["proc_rss_mib"] > 10  # this interpreter with pytest loaded


class Stats:
    def __init__(self, steps=0, wait=0.0, body=0.0):
        self.steps, self.data_wait_s, self.body_s = steps, wait, body


def test_loop_source_rates_between_readings():
    t = [0.0]
    stats = Stats()
    src = LoopSource(stats, clock=lambda: t[0])
    assert src.read() == {}  # baseline
    t[0], stats.steps, stats.data_wait_s, stats.body_s = 2.0, 50, 0.5, 1.5
    assert src.read() == {"steps_per_s": 25.0, "data_wait_pct": 25.0}
    t[0] = 4.0
    assert src.read() == {"steps_per_s": 0.0}  # no step: no data-wait share


def test_loop_source_new_baseline_when_counters_go_back_or_stats_change():
    t = [0.0]
    stats = Stats(steps=100)
    src = LoopSource(stats, clock=lambda: t[0])
    src.read()
    t[0], stats.steps = 1.0, 3
    assert src.read() == {}
    t[0], stats.steps = 2.0, 13
    assert src.read() == {"steps_per_s": 10.0}
    other = Stats(steps=7)
    src.attach(other)
    assert src.stats is other
    t[0] = 3.0
    assert src.read() == {}


def test_loop_source_refuses_an_object_without_loop_statistics():
    with pytest.raises(TypeError, match="loop_stats must be a TrainingMonitor"):
        LoopSource(object(), clock=lambda: 0.0)
