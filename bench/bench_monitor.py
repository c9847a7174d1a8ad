"""Tight-loop cost of a bar with 3 metrics: TrainingMonitor and TrainingSession against a bare
loop, plain tqdm, tqdm + set_postfix every step and Keras's Progbar (update with 3 values), all
in one process.

The variants run interleaved (``_timing.interleaved``: one of each per round, the first one
rotating); each row is the median over the rounds with the min-max, its ratio to the bare loop
per round, and the nanoseconds it adds over the bare loop (median of the per-round differences).

Run: .venv/bin/python bench/bench_monitor.py [--quick]
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, best_of, emit, interleaved, ns, rounds_of, timed
from loopwise import TrainingMonitor, TrainingSession
from loopwise.record import Run

N = 200_000


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


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


def keras_progbar() -> None:
    """keras.utils.Progbar.update(step, values) with 3 values, on a terminal-like stream."""
    import keras

    acc = 0.0
    with contextlib.redirect_stdout(Tty()):
        bar = keras.utils.Progbar(N)
        update = bar.update
        for i in range(N):
            loss, a, b = 0.5, 0.25, float(i)
            acc += loss + a + b
            update(i + 1, [("loss", loss), ("a", a), ("b", b)])


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


def main() -> None:
    global N
    args = arguments(__doc__, rounds=7).parse_args()
    rounds = rounds_of(args)
    if args.quick:
        N = 50_000
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if importlib.util.find_spec("keras") is not None:
        import keras  # noqa: F401  (imported outside the timed rounds)
    with tempfile.TemporaryDirectory() as root:
        run = Run.create(root)
        csv_path = os.path.join(root, "t.csv")
        variants: dict[str, Callable[[], float]] = {
            "bare loop": timed(bare),
            "tqdm": timed(plain_tqdm),
            "tqdm + set_postfix every step": timed(tqdm_postfix),
        }
        if importlib.util.find_spec("keras") is not None:
            variants["Keras Progbar.update, 3 values"] = timed(keras_progbar)
        variants.update({
            "TrainingMonitor, record=False": lambda: monitor(None),
            "TrainingMonitor (run record, the default)": lambda: monitor(run),
            "TrainingMonitor (record + CSV)": lambda: monitor(run, log_file=csv_path),
            "TrainingSession, record=False": lambda: session(None),
            "TrainingSession (run record)": lambda: session(run),
        })
        samples = interleaved(variants, rounds=rounds)
        setup = best_of(lambda: Run.create(root).close(), repeat=3)
        run.close()
    table = Table("bar", f"Tight-loop cost of a bar with 3 metrics ({N:,} steps per round, "
                  f"{rounds} interleaved rounds, one process)", "ns/step",
                  baseline="bare loop", ratio_label="x bare loop")
    base = samples["bare loop"]
    for name, secs in samples.items():
        added = statistics.median(ns(s - b, N) for s, b in zip(secs, base))
        table.add(name, [ns(s, N) for s in secs],
                  note="" if name == "bare loop" else f"+{added:,.0f} ns over bare")
    table.notes.append(f"one-off: creating and closing a run (run.json, store, git commit "
                       f"lookup): {setup * 1e3:.1f} ms")
    emit([table], args)


if __name__ == "__main__":
    main()
