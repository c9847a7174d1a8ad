"""Cost of ProgressBar.update() and of one TrainingSession step, against a bare loop that does
the same work without them (builds the same metrics dict), and against tqdm; one process,
the variants interleaved (``_timing.interleaved``), medians over 5 rounds with min-max.

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

Run: .venv/bin/python bench/bench_progress.py [--quick]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, ns, rounds_of, timed
from loopwise import ProgressBar, TrainingSession

N = 1_000_000
N_SESSION = 200_000
ROUNDS = 5


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def bare(n: int | None = None) -> None:
    acc = 0.0
    for step in range(1, (N if n is None else n) + 1):
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


def table(key: str, title: str, samples: dict[str, list[float]], n: int) -> Table:
    out = Table(key, title, "ns/step", baseline="bare loop", ratio_label="x bare loop")
    base = samples["bare loop"]
    for name, secs in samples.items():
        added = statistics.median(ns(s - b, n) for s, b in zip(secs, base))
        out.add(name, [ns(s, n) for s in secs],
                note="" if name == "bare loop" else f"+{added:,.0f} ns over bare")
    return out


def main() -> None:
    global N, N_SESSION
    args = arguments(__doc__, rounds=ROUNDS).parse_args()
    rounds = rounds_of(args)
    if args.quick:
        N, N_SESSION = 200_000, 50_000
    bar_rows = interleaved({name: timed(fn) for name, fn in {
        "bare loop": bare,
        "ProgressBar.update(step), no metrics": no_redraw_no_metrics,
        "ProgressBar.update(), no redraw": no_redraw,
        "ProgressBar.advance(1, metrics), no redraw": advance_no_redraw,
        "ProgressBar, terminal (0.1 s redraws)": terminal,
        "ProgressBar, not a terminal (10 % lines)": not_terminal,
        "tqdm.update(1) (reference)": plain_tqdm,
    }.items()}, rounds=rounds)
    with tempfile.TemporaryDirectory() as root:
        session_rows = interleaved({
            "bare loop": timed(lambda: bare(N_SESSION)),
            "TrainingSession step, record=False": timed(lambda: session(root, record=False)),
            "TrainingSession step, own run record": timed(lambda: session(root, record=True)),
        }, rounds=rounds)
    emit([table("progressbar", f"ProgressBar per step ({N:,} steps, {rounds} rounds)",
                bar_rows, N),
          table("session", f"TrainingSession per step ({N_SESSION:,} steps, {rounds} rounds)",
                session_rows, N_SESSION)], args)


if __name__ == "__main__":
    main()
