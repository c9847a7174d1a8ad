"""CPU cost of the system sampler (SystemMonitor) at its default interval, as % of one core.

Two measurements, in one process, against a baseline of the same process idling with an open
run and no sampler:

1. scaled: the sampler runs with a short interval (many readings per second) writing into a real
   run; its thread's CPU time per reading (psutil per-thread times) and the whole process's
   extra CPU time per reading (sampler + the store thread writing its rows, minus the baseline)
   are scaled to the default rate (interval 2 s, 4 readings per interval = 2 readings/s);
2. direct: the sampler at the default interval for ``--seconds`` (default 20), process CPU time
   minus the baseline's.

Run: .venv/bin/python bench/bench_system.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import psutil

from loopwise.record import Run
from loopwise.watch.system import DEFAULT_INTERVAL, DEFAULT_SUBSAMPLES, SystemMonitor

DEFAULT_READINGS_PER_S = DEFAULT_SUBSAMPLES / DEFAULT_INTERVAL


def thread_cpu(native_id: int) -> float:
    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    raise LookupError(f"thread {native_id} not found")


def process_cpu() -> float:
    return time.process_time()


def idle_baseline(root: str, seconds: float) -> float:
    """Process CPU seconds per wall second with an open run and no sampler."""
    with Run.create(root) as _run:
        c0, w0 = process_cpu(), time.perf_counter()
        time.sleep(seconds)
        return (process_cpu() - c0) / (time.perf_counter() - w0)


def scaled(root: str, seconds: float, interval: float) -> dict[str, float]:
    with Run.create(root) as run:
        monitor = SystemMonitor(run, interval=interval)
        c0, w0 = process_cpu(), time.perf_counter()
        monitor.start()
        assert monitor._thread is not None
        time.sleep(0.2)  # let it open its sources
        native = monitor._thread.native_id
        assert native is not None
        t0, c1, w1, n0 = thread_cpu(native), process_cpu(), time.perf_counter(), \
            monitor.samples_written
        time.sleep(seconds)
        t1, c2, w2, n1 = thread_cpu(native), process_cpu(), time.perf_counter(), \
            monitor.samples_written
        monitor.stop()
        del c0, w0
    readings = (n1 - n0) * DEFAULT_SUBSAMPLES
    return {"readings": readings, "wall": w2 - w1, "thread_cpu": t1 - t0,
            "process_cpu": c2 - c1}


def direct(root: str, seconds: float) -> dict[str, float]:
    with Run.create(root) as run:
        monitor = SystemMonitor(run)
        c0, w0 = process_cpu(), time.perf_counter()
        monitor.start()
        time.sleep(seconds)
        c1, w1 = process_cpu(), time.perf_counter()
        samples = monitor.samples_written
        monitor.stop()
    return {"wall": w1 - w0, "process_cpu": c1 - c0, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of each measurement (default 20)")
    args = parser.parse_args()
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as root:
        base = idle_baseline(root, args.seconds / 2)
        fast = scaled(root, args.seconds / 2, interval=0.05)  # 80 readings/s
        slow = direct(root, args.seconds)
        base_after = idle_baseline(root, args.seconds / 2)
    baseline = (base + base_after) / 2
    per_reading_thread = fast["thread_cpu"] / fast["readings"]
    per_reading_process = (fast["process_cpu"] - baseline * fast["wall"]) / fast["readings"]
    pct_thread = per_reading_thread * DEFAULT_READINGS_PER_S * 100
    pct_process = per_reading_process * DEFAULT_READINGS_PER_S * 100
    pct_direct = (slow["process_cpu"] / slow["wall"] - baseline) * 100
    print(f"machine: {cores} cores, psutil {psutil.__version__}; no GPU -> NVML path is the "
          "'unavailable' one (GPU reads not measured here)")
    print(f"baseline (open run, no sampler): {baseline * 100:.3f}% of one core")
    print(f"scaled run: {fast['readings']:.0f} readings in {fast['wall']:.1f} s "
          f"({fast['readings'] / fast['wall']:.0f}/s)")
    print(f"  sampler thread CPU per reading: {per_reading_thread * 1e6:.0f} us; process extra "
          f"per reading (incl. store writes): {per_reading_process * 1e6:.0f} us")
    print()
    print("| measurement | % of one core at the default interval (2 s, 4 readings) |")
    print("|---|---|")
    print(f"| sampler thread, scaled from {fast['readings'] / fast['wall']:.0f} readings/s | "
          f"{pct_thread:.3f}% |")
    print(f"| whole process above baseline, scaled | {pct_process:.3f}% |")
    print(f"| whole process above baseline, direct ({slow['wall']:.0f} s at 2 s, "
          f"{slow['samples']:.0f} samples) | {pct_direct:.3f}% |")
    print("| target | < 1% |")


if __name__ == "__main__":
    main()
