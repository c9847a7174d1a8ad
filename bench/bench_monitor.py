"""Per-step cost of TrainingMonitor and TrainingSession (3 metrics every step, through the one
shared accumulator) against a bare loop, plain tqdm and tqdm + set_postfix every step; all in
one process.

The variants run interleaved, one of each per round, and each keeps its best round: a machine
that drifts in speed (shared VMs do, by tens of percent) then moves all of them together and
the ratios hold. The last two columns scale the overhead to the issue's reference machine by the
per-step time there of plain tqdm (95 ns) and of tqdm + set_postfix (19 us):
``over bare x 95 / (tqdm ns/step here)``, ``over bare x 19000 / (set_postfix ns/step here)``.

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
from loopwise import TrainingMonitor, TrainingSession
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


def session(run: Run | None) -> float:
    """TrainingSession's step: update_training_progress(step, loss, accuracy, {"b": ...})
    (3 values, as the monitor's loop) through the same accumulator."""
    s = TrainingSession("bench", 1, N, 0, run=run, record=run is not None, system=False,
                        health=False, file=io.StringIO())
    s.start_training()
    s.start_epoch(1)
    update = s.update_training_progress
    acc = 0.0
    t0 = time.perf_counter()
    for i in range(1, N + 1):
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b
        update(i, loss, a, {"b": b})
    s.finish_training_epoch()
    if run is not None:
        run.flush()
    elapsed = time.perf_counter() - t0
    s.close()
    return elapsed


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


REFERENCE_TQDM_NS = 95.0  # per step on the reference machine: plain tqdm,
REFERENCE_POSTFIX_NS = 19_000.0  # and tqdm + set_postfix every step


def main(rounds: int = 7) -> None:
    with tempfile.TemporaryDirectory() as root:
        run = Run.create(root)
        csv_path = os.path.join(root, "t.csv")
        variants: dict[str, Callable[[], float]] = {
            "bare loop": timed(bare),
            "tqdm": timed(plain_tqdm),
            "tqdm + set_postfix every step": timed(tqdm_postfix),
            "TrainingMonitor, record=False": lambda: monitor(None),
            "TrainingMonitor (run record)": lambda: monitor(run),
            "TrainingMonitor (record + CSV)": lambda: monitor(run, log_file=csv_path),
            "TrainingSession, record=False": lambda: session(None),
            "TrainingSession (run record)": lambda: session(run),
        }
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds):
            for name, fn in variants.items():
                best[name] = min(best[name], fn())
        setup = best_of(lambda: Run.create(root).close(), repeat=3)
        run.close()
    base = best["bare loop"]
    by_tqdm = REFERENCE_TQDM_NS / ns(best["tqdm"], N)
    by_postfix = REFERENCE_POSTFIX_NS / ns(best["tqdm + set_postfix every step"], N)
    print(f"{'loop':34s} {'ns/step':>9s} {'over bare':>10s} {'x tqdm':>7s} "
          f"{'ref ns (tqdm)':>14s} {'ref ns (postfix)':>17s}")
    for name, secs in best.items():
        over = ns(secs - base, N)
        print(f"{name:34s} {ns(secs, N):9.0f} {over:10.0f} {secs / best['tqdm']:7.2f} "
              f"{over * by_tqdm:14.0f} {over * by_postfix:17.0f}")
    print(f"one-off: creating and closing a run (run.json, store, git commit lookup): "
          f"{setup * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
