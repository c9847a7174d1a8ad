"""The run store: calling-thread cost per scalar, sustained throughput to disk, and reading a
1M-point series back; compared with csv.writer writing the same rows, in one process.

Run: .venv/bin/python bench/bench_store.py
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of
from loopwise.record import Run, RunReader

STEPS = 100_000
KEYS = [f"metric_{i}" for i in range(10)]
N = STEPS * len(KEYS)


def csv_writer(root: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    with open(os.path.join(root, "rows.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        now = time.time()
        for step in range(STEPS):
            for key in KEYS:
                writer.writerow((key, step, now, 0.5))
        fh.flush()
        os.fsync(fh.fileno())
    total = time.perf_counter() - t0
    return total, total


def log_scalars(root: str) -> tuple[float, float]:
    run = Run.create(root)
    values = dict.fromkeys(KEYS, 0.5)
    t0 = time.perf_counter()
    for step in range(STEPS):
        run.log_scalars(values, step=step)
    calling = time.perf_counter() - t0
    run.close()
    return calling, time.perf_counter() - t0


def append_columns(root: str) -> tuple[float, float]:
    """The TrainingMonitor path: columns handed over once per refresh (here every 1,000 steps)."""
    run = Run.create(root)
    t0 = time.perf_counter()
    now = time.time()
    for start in range(0, STEPS, 1000):
        steps = list(range(start, start + 1000))
        times = [now] * 1000
        run.log_columns({k: (steps, times, [0.5] * 1000) for k in KEYS})
    calling = time.perf_counter() - t0
    run.close()
    return calling, time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        print(f"{N:,} scalars ({STEPS:,} steps x {len(KEYS)} keys), best of 3")
        print(f"{'writer':34s} {'calling us/scalar':>18s} {'to disk scalars/s':>18s}")
        base = None
        for name, fn in (("csv.writer + fsync (baseline)", csv_writer),
                         ("Run.log_scalars", log_scalars),
                         ("Run.log_columns (monitor path)", append_columns)):
            runs = [fn(root) for _ in range(3)]
            calling = min(r[0] for r in runs)
            total = min(r[1] for r in runs)
            base = base or total
            print(f"{name:34s} {calling / N * 1e6:18.3f} {N / total:18,.0f}"
                  f"   ({base / total:.1f}x csv)")
        run = Run.create(root, "read")
        steps = list(range(1_000_000))
        run.log_columns({"x": (steps, [0.0] * 1_000_000, [0.5] * 1_000_000)})
        run.close()
        reader = RunReader(run.path)
        read = best_of(lambda: reader.series("x"))
        down = best_of(lambda: reader.series("x", max_points=1000))
        print(f"read one key's 1M-point series: {read * 1e3:.1f} ms; "
              f"downsampled to 1,000 points: {down * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
