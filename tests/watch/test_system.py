"""SystemMonitor: aggregation with a fake clock and fake sources, the thread's lifecycle, the
NVML-absent path, and ensure_system_monitor on a real run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from loopwise.record import Run, RunReader
from loopwise.watch.sources import SourceError
from loopwise.watch.system import SystemMonitor
from loopwise.watch.system_run import ensure_system_monitor, system_option


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class FakeRun:
    def __init__(self):
        self.samples, self.events, self.closers = [], [], []
        self.closed = False

    def log_system(self, values):
        self.samples.append(dict(values))

    def log_event(self, kind, message, *, level="info", data=None):
        self.events.append((kind, level, message))

    def on_close(self, callback):
        self.closers.append(callback)

    def close(self):
        for c in reversed(self.closers):
            c()
        self.closed = True


class Scripted:
    """A source returning scripted readings, recording the thread that read it."""

    def __init__(self, name, readings):
        self.name = name
        self.readings = list(readings)
        self.threads = set()
        self.closed = False

    def read(self):
        self.threads.add(threading.get_ident())
        return self.readings.pop(0) if self.readings else {}

    def close(self):
        self.closed = True


class Broken:
    name = "broken"

    def __init__(self):
        self.calls = 0

    def read(self):
        self.calls += 1
        raise SourceError("device lost")

    def close(self):
        pass


class Stats:
    def __init__(self):
        self.steps, self.data_wait_s, self.body_s = 0, 0.0, 0.0


def drive(monitor, clock, n, dt=0.5):
    out = []
    for _ in range(n):
        sample = monitor.tick()
        if sample is not None:
            out.append(sample)
        clock.t += dt
    return out


def test_an_interval_records_mean_min_and_max_of_its_readings():
    clock, run = FakeClock(), FakeRun()
    src = Scripted("s", [{"cpu_pct": 99.0}, {"cpu_pct": 10.0}, {"cpu_pct": 30.0},
                         {"cpu_pct": 20.0}, {"cpu_pct": 40.0}, {"cpu_pct": 50.0}])
    monitor = SystemMonitor(run, sources=[src], clock=clock)
    samples = drive(monitor, clock, 5)  # t = 0 (baseline), 0.5, 1.0, 1.5, 2.0
    assert samples == [{"cpu_pct": 25.0, "cpu_pct.min": 10.0, "cpu_pct.max": 40.0}]
    assert run.samples == samples  # the baseline reading (99) is not part of any interval
    assert monitor.samples_written == 1 and monitor.last_sample == samples[0]


def test_loop_statistics_give_steps_per_second_and_data_wait_share():
    clock, run, stats = FakeClock(), FakeRun(), Stats()
    monitor = SystemMonitor(run, sources=[], loop_stats=stats, clock=clock)
    monitor.tick()  # baseline
    for _ in range(4):  # every 0.5 s: 10 steps, 0.1 s waiting, 0.4 s in the body
        clock.t += 0.5
        stats.steps += 10
        stats.data_wait_s += 0.1
        stats.body_s += 0.4
        sample = monitor.tick()
    assert sample["steps_per_s"] == pytest.approx(20.0)
    assert sample["data_wait_pct"] == pytest.approx(20.0)
    assert sample["steps_per_s.min"] == pytest.approx(20.0)


def test_a_monitor_object_with_a_stats_property_is_followed():
    class Monitor:
        def __init__(self):
            self.inner = Stats()

        @property
        def stats(self):
            return self.inner

    clock, monitor_obj = FakeClock(), Monitor()
    monitor = SystemMonitor(None, sources=[], loop_stats=monitor_obj, clock=clock, subsamples=1)
    monitor.tick()
    clock.t = 2.0
    monitor_obj.inner.steps = 8
    assert monitor.tick()["steps_per_s"] == pytest.approx(4.0)


def test_idle_loop_reads_zero_steps_and_no_data_wait():
    clock, stats = FakeClock(), Stats()
    monitor = SystemMonitor(None, sources=[], loop_stats=stats, clock=clock, subsamples=1)
    monitor.tick()
    clock.t = 2.0
    assert monitor.tick() == {"steps_per_s": 0.0, "steps_per_s.min": 0.0,
                              "steps_per_s.max": 0.0}


def test_attaching_new_loop_stats_restarts_the_baseline():
    clock, first = FakeClock(), Stats()
    monitor = SystemMonitor(None, sources=[], loop_stats=first, clock=clock, subsamples=1)
    monitor.tick()
    first.steps = 1000
    second = Stats()
    second.steps = 5
    monitor.attach_loop_stats(second)
    clock.t = 2.0
    assert monitor.tick() is None  # only the new baseline was read: nothing to record
    second.steps = 25
    clock.t = 4.0
    assert monitor.tick()["steps_per_s"] == pytest.approx(10.0)


def test_a_failing_source_is_reported_once_and_dropped():
    clock, run = FakeClock(), FakeRun()
    broken, good = Broken(), Scripted("ok", [{"ram_pct": 5.0}] * 20)
    monitor = SystemMonitor(run, sources=[broken, good], clock=clock)
    samples = drive(monitor, clock, 13)
    assert broken.calls == 1
    assert [(k, lv) for k, lv, _ in run.events] == [("system.source_failed", "warning")]
    assert "device lost" in run.events[0][2]
    assert [s["ram_pct"] for s in samples] == [5.0, 5.0, 5.0]


def test_without_nvml_one_info_event_and_no_repeated_warnings():
    # this machine has no GPU: the real pynvml raises NVMLError (library not found)
    clock, run = FakeClock(), FakeRun()
    monitor = SystemMonitor(run, clock=clock)
    samples = drive(monitor, clock, 41)
    assert [(k, lv) for k, lv, _ in run.events] == [("system.gpu_unavailable", "info")]
    assert "NVML" in run.events[0][2] and "recording CPU and RAM only" in run.events[0][2]
    assert len(samples) == 10
    assert {"cpu_pct", "proc_cpu_pct", "ram_pct", "proc_rss_mib"} <= set(samples[-1])
    assert 0 < samples[-1]["proc_rss_mib"] < 1e6
    monitor.stop()


def test_a_fake_nvml_reporting_no_gpu_gives_the_same_single_info_event():
    class FakeNVMLError(Exception):
        value = 999

    class NoGpu:
        NVMLError = FakeNVMLError

        def nvmlInit(self):
            raise FakeNVMLError("no GPU")

    clock, run = FakeClock(), FakeRun()
    monitor = SystemMonitor(run, clock=clock, nvml=NoGpu())
    drive(monitor, clock, 9)
    assert [(k, lv) for k, lv, _ in run.events] == [("system.gpu_unavailable", "info")]
    assert "NVML is unavailable (no GPU)" in run.events[0][2]
    assert monitor.gpu_status.startswith("no GPU telemetry")


def test_the_thread_samples_off_the_training_thread_and_stop_flushes_the_partial_interval():
    run = FakeRun()
    src = Scripted("s", [{"x": float(i)} for i in range(10_000)])
    monitor = SystemMonitor(run, interval=0.04, subsamples=2, sources=[src]).start()
    assert monitor.running
    thread = monitor._thread
    assert thread.daemon and thread.name == "loopwise-system"
    deadline = time.monotonic() + 5
    while len(run.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    written = len(run.samples)
    monitor.stop()
    assert not thread.is_alive() and not monitor.running
    assert written >= 3
    assert src.threads == {thread.ident} and threading.get_ident() not in src.threads
    assert src.closed
    monitor.stop()  # idempotent
    with pytest.raises(RuntimeError, match="was stopped; make a new one"):
        monitor.start()


def test_an_unexpected_error_in_the_thread_is_recorded_not_lost():
    class Buggy:
        name = "buggy"

        def read(self):
            raise ZeroDivisionError("oops")

        def close(self):
            pass

    run = FakeRun()
    monitor = SystemMonitor(run, interval=0.01, sources=[Buggy()]).start()
    monitor._thread.join(5)
    assert [(k, lv) for k, lv, _ in run.events] == [("system.sampler_error", "error")]
    assert "ZeroDivisionError: oops" in run.events[0][2]
    monitor.stop()


def test_the_sampler_never_keeps_the_process_alive():
    code = textwrap.dedent("""
        from loopwise.watch.system import SystemMonitor
        SystemMonitor(None, interval=0.05).start()
        print("exiting")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "exiting", out.stderr


def test_ensure_system_monitor_is_one_per_run_and_stops_with_it(tmp_path):
    run = Run.create(tmp_path, "r")
    stats = Stats()
    monitor = ensure_system_monitor(run, interval=0.05)
    assert ensure_system_monitor(run, loop_stats=stats) is monitor
    assert run.find_helper(SystemMonitor) is monitor and monitor.running
    deadline = time.monotonic() + 5
    while monitor.samples_written < 2 and time.monotonic() < deadline:
        stats.steps += 1
        time.sleep(0.01)
    run.close()
    assert not monitor.running
    names = {name for _, name, _ in RunReader(run.path).system()}
    assert {"cpu_pct", "cpu_pct.min", "cpu_pct.max", "proc_rss_mib", "steps_per_s"} <= names
    kinds = [e.kind for e in RunReader(run.path).events()]
    assert kinds.count("system.gpu_unavailable") == 1
    assert ensure_system_monitor(run) is monitor  # a closed run still answers with its monitor
    closed = Run.create(tmp_path, "closed")
    closed.close()
    with pytest.raises(RuntimeError, match="the run is closed; start the system sampler"):
        ensure_system_monitor(closed)


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf"), "2", True])
def test_invalid_intervals_are_clear_errors(interval):
    error = TypeError if isinstance(interval, (str, bool)) else ValueError  # type, or value
    with pytest.raises(error, match=r"interval must be a finite number > 0 \(seconds"):
        SystemMonitor(None, interval=interval)
    with pytest.raises(error, match=r"interval must be a finite number > 0 \(seconds"):
        ensure_system_monitor(FakeRun(), interval=interval)


def test_other_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"subsamples must be an int >= 1 \(readings per interval\), got 0"):
        SystemMonitor(None, subsamples=0)
    with pytest.raises(TypeError, match="is not a sampler source"):
        SystemMonitor(None, sources=[object()])
    with pytest.raises(TypeError, match="loop_stats must be a TrainingMonitor"):
        SystemMonitor(None, loop_stats=object())
    with pytest.raises(TypeError, match=r"run must be a loopwise Run, got object \(no log_system"):
        ensure_system_monitor(object())
    with pytest.raises(TypeError, match="subscribe needs a callable"):
        SystemMonitor(None).subscribe(3)


def test_a_second_start_asking_for_another_interval_is_told_it_is_ignored(tmp_path):
    with Run.create(tmp_path, "twice") as run:
        first = ensure_system_monitor(run, interval=5.0)
        assert ensure_system_monitor(run) is first  # no interval asked: no warning
        with pytest.warns(UserWarning, match=r"the run's system sampler already samples every "
                                             r"5 s; interval=0.5 is ignored \(the sampler's "
                                             r"first start sets it\)"):
            assert ensure_system_monitor(run, interval=0.5) is first
        assert first.interval == 5.0


def test_system_option_reads_true_false_or_seconds():
    assert system_option(True) == (True, None)
    assert system_option(False) == (False, None)
    assert system_option(0.5) == (True, 0.5) and system_option(3) == (True, 3.0)
    for bad in (0, -1.0, float("nan"), "yes", None):
        with pytest.raises(ValueError, match=r"system must be True \(sample every 2 s, or keep "
                                             r"the sampler already running on the run\), False "
                                             r"\(none\) or a sampling interval in seconds > 0; "
                                             r"got "):
            system_option(bad)
