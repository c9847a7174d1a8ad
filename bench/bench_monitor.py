"""Per-step cost of TrainingMonitor (3 metrics logged every step) against a bare loop, plain
tqdm and tqdm + set_postfix every step; all in one process, best of 5.

Run: .venv/bin/python bench/bench_monitor.py
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections.abc import Callable

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of, ns
from loopwise import TrainingMonitor
from loopwise.record import Run

N = 200_000


def bare() -> None:
    acc = 0.0
    for i in range(N):
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b


def plain_tqdm() -> None:
    acc = 0.0
    for i in tqdm(range(N), file=io.StringIO(), mininterval=0.1):
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b


def tqdm_postfix() -> None:
    acc = 0.0
    bar = tqdm(range(N), file=io.StringIO(), mininterval=0.1)
    for i in bar:
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b
        bar.set_postfix(loss=loss, a=a, b=b)


def monitor(run: Run | None, *, log_file: str | None = None) -> float:
    """Steady-state loop time (the run is made outside: its one-off setup is timed apart)."""
    acc = 0.0
    m = TrainingMonitor(range(N), file=io.StringIO(), run=run, record=run is not None,
                        system=False, log_file=log_file)
    t0 = time.perf_counter()
    for i in m:
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b
        m.log({"loss": loss, "a": a, "b": b})
    if run is not None:
        run.flush()
    return time.perf_counter() - t0


def steady(fn: Callable[[], float], repeat: int = 5) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        run = Run.create(root)
        results = {
            "bare loop": best_of(bare),
            "tqdm": best_of(plain_tqdm),
            "tqdm + set_postfix every step": best_of(tqdm_postfix, repeat=3),
            "TrainingMonitor, record=False": steady(lambda: monitor(None)),
            "TrainingMonitor (run record)": steady(lambda: monitor(run)),
            "TrainingMonitor (record + CSV)": steady(
                lambda: monitor(run, log_file=os.path.join(root, "t.csv")), repeat=3),
        }
        setup = best_of(lambda: Run.create(root).close(), repeat=3)
        run.close()
    base = results["bare loop"]
    print(f"{'loop':34s} {'ns/step':>9s} {'over bare':>10s} {'x tqdm':>7s}")
    for name, secs in results.items():
        over = ns(secs - base, N)
        print(f"{name:34s} {ns(secs, N):9.0f} {over:10.0f} {secs / results['tqdm']:7.2f}")
    print(f"one-off: creating and closing a run (run.json, store, git commit lookup): "
          f"{setup * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
