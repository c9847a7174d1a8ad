"""Cost of ProgressBar.update() and of one TrainingSession step, against a bare loop that does
the same work without them (builds the same metrics dict), and against tqdm; one process,
the variants interleaved (one of each per round), each keeping its best of 5 rounds.

Rows:
- ProgressBar.update(), no redraw: a terminal bar whose next redraw is never due (the
  per-call cost on the non-drawing path, which is what almost every call takes).
- ProgressBar.update(step), no metrics: the same loop without passing the dict; the difference
  to the row above is the cost of checking the metrics at the call.
- ProgressBar.advance(1, metrics), no redraw: the relative increment (takes the bar's lock).
- ProgressBar, terminal, 0.1 s redraws: the default on a terminal (redraws included).
- ProgressBar, not a terminal: the default for logs (a line per 10 %).
- TrainingSession step: update_training_progress(step, loss, accuracy) with record=False and
  with its own run record (rows handed to the run's writer thread every second).

Run: .venv/bin/python bench/bench_progress.py
"""

from __future__ import annotations

import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(__file__))
from _timing import ns
from loopwise import ProgressBar, TrainingSession

N = 1_000_000
N_SESSION = 200_000
ROUNDS = 5


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def bare(n: int = N) -> None:
    acc = 0.0
    for step in range(1, n + 1):
        metrics = {"loss": 0.5, "accuracy": 0.25}
        acc += metrics["loss"] + step


def bar_loop(bar: ProgressBar) -> None:
    acc = 0.0
    update = bar.update
    for step in range(1, N + 1):
        metrics = {"loss": 0.5, "accuracy": 0.25}
        acc += metrics["loss"] + step
        update(step, metrics)
    bar.finish()


def no_redraw() -> None:
    bar_loop(ProgressBar("bench", N + 1, file=Tty(), mininterval=float("inf")))


def no_redraw_no_metrics() -> None:
    """The same loop and dict, the metrics not passed: the difference to no_redraw() is what
    checking and storing the metrics at each call costs."""
    bar = ProgressBar("bench", N + 1, file=Tty(), mininterval=float("inf"))
    acc = 0.0
    update = bar.update
    for step in range(1, N + 1):
        metrics = {"loss": 0.5, "accuracy": 0.25}
        acc += metrics["loss"] + step
        update(step)
    bar.finish()


def advance_no_redraw() -> None:
    bar = ProgressBar("bench", N + 1, file=Tty(), mininterval=float("inf"))
    acc = 0.0
    advance = bar.advance
    for step in range(1, N + 1):
        metrics = {"loss": 0.5, "accuracy": 0.25}
        acc += metrics["loss"] + step
        advance(1, metrics)
    bar.finish()


def terminal() -> None:
    bar_loop(ProgressBar("bench", N, file=Tty()))


def not_terminal() -> None:
    bar_loop(ProgressBar("bench", N, file=io.StringIO()))


def plain_tqdm() -> None:
    acc = 0.0
    bar = tqdm(total=N, file=io.StringIO(), mininterval=0.1)
    for step in range(1, N + 1):
        metrics = {"loss": 0.5, "accuracy": 0.25}
        acc += metrics["loss"] + step
        bar.update(1)
    bar.close()


def session(root: str, *, record: bool) -> None:
    s = TrainingSession("bench", 1, N_SESSION, 0, root=root, record=record, system=False,
                        file=io.StringIO())
    s.start_training()
    s.start_epoch(1)
    update = s.update_training_progress
    acc = 0.0
    for step in range(1, N_SESSION + 1):
        acc += step
        update(step, 0.5, 0.25)
    s.finish_training_epoch()
    s.close()


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each function once per round, in turn; each keeps its best round (seconds)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    bar_rows = interleaved({
        "bare loop": bare,
        "ProgressBar.update(step), no metrics": no_redraw_no_metrics,
        "ProgressBar.update(), no redraw": no_redraw,
        "ProgressBar.advance(1, metrics), no redraw": advance_no_redraw,
        "ProgressBar, terminal (0.1 s redraws)": terminal,
        "ProgressBar, not a terminal (10 % lines)": not_terminal,
        "tqdm.update(1) (reference)": plain_tqdm,
    }, ROUNDS)
    base = bar_rows.pop("bare loop")
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"bare loop: {ns(base, N):.0f} ns/step\n")
    print(f"{f'per step (N = {N:,})':42s} {'ns/step':>8s} {'added ns':>9s} {'x bare':>7s}")
    for name, secs in bar_rows.items():
        print(f"{name:42s} {ns(secs, N):8.0f} {ns(secs - base, N):9.0f} {secs / base:7.2f}")
    with tempfile.TemporaryDirectory() as root:
        srows = interleaved({
            "bare loop": lambda: bare(N_SESSION),
            "TrainingSession step, record=False": lambda: session(root, record=False),
            "TrainingSession step, own run record": lambda: session(root, record=True),
        }, ROUNDS)
    base_s = srows.pop("bare loop")
    print(f"\n{f'per step (N = {N_SESSION:,})':42s} {'ns/step':>8s} {'added ns':>9s} "
          f"{'x bare':>7s}")
    for name, secs in srows.items():
        print(f"{name:42s} {ns(secs, N_SESSION):8.0f} {ns(secs - base_s, N_SESSION):9.0f} "
              f"{secs / base_s:7.2f}")


if __name__ == "__main__":
    main()
