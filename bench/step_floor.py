"""The floor of per-step Python instrumentation in a real loop: the tiny model's 3,000-step
epochs (``bench/entry_points.py``'s data, model and loader, one torch thread), plain, and
with a bare copy of what TrainingMonitor does per step, without loopwise: ``wrap`` (a
generator around the loader with two ``perf_counter`` reads, an append and two additions)
and ``wrap+log`` (that, plus ``log({"loss": loss})``'s fast path: the type checks, the CPU
loss read with ``item()``, two appends). The training thread's CPU time per step over the
last two epochs, mean and median, one fresh process each, interleaved rounds.

It shows what any Python-level step hook costs when torch's work runs between the calls
(the same code costs ~1 us in a tight loop): the goal of <= 3 us/step sits at this floor.

Run: .venv/bin/python bench/step_floor.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
import entry_points

VARIANTS = ("plain", "wrap", "wrap+log")
STEPS = 3_000


def _wrap(iterable: Iterable[Any]) -> Iterator[Any]:
    """TrainingMonitor._iterate's step path copied on purpose (the point is to time it without
    loopwise): keep it in step with watch/monitor.py."""
    perf = time.perf_counter
    times: list[float] = []
    mark = times.append
    wait = body = 0.0
    t_end = perf()
    for batch in iterable:
        t_got = perf()
        mark(t_got)
        wait += t_got - t_end
        yield batch
        t_end = perf()
        body += t_end - t_got


class _Columns:
    """TrainingMonitor.log's fast path, bare: a CPU loss read now, appended to its column."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[list[int], list[float]]] = {"loss": ([], [])}
        self.times: list[float] = []

    def log(self, metrics: dict[str, Any]) -> None:
        import torch

        index = len(self.times)
        for key, value in metrics.items():
            if type(value) is torch.Tensor and value.is_cpu and value.numel() == 1:
                value = value.item()
            if type(value) is float:
                col = self.pending[key]
                col[0].append(index)
                col[1].append(value)


def worker(variant: str) -> None:
    import torch

    torch.set_num_threads(1)
    entry_points.MODELS["tiny"]["rows"] = STEPS * 32
    x, y, net, (loss_fn, make_opt) = entry_points._data("tiny")
    loader = entry_points._loader(x, y, 32, [])
    opt = make_opt(net.parameters())
    columns = _Columns()
    stamps: list[float] = []
    for _ in range(3):
        total = 0.0
        for xb, yb in (loader if variant == "plain" else _wrap(loader)):
            stamps.append(time.thread_time())
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            if variant == "wrap+log":
                columns.log({"loss": loss})
            else:
                total += loss.item()
    dt = [(b - a) * 1e6 for a, b in zip(stamps[STEPS:], stamps[STEPS + 1:])]
    print(f"{statistics.mean(dt)} {statistics.median(dt)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    got: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
            out = subprocess.run([sys.executable, __file__, "--worker", variant], check=True,
                                 capture_output=True, text=True).stdout.split()
            got[variant].append((float(out[0]), float(out[1])))
    print(f"Training-thread CPU per step, tiny model, {STEPS:,}-step epochs, {args.rounds} "
          "processes each")
    print("| what | mean, us/step | added (median of the rounds) | median, us/step |")
    print("|---|---|---|---|")
    for variant, rows in got.items():
        added = statistics.median(m - b[0] for (m, _), b in zip(rows, got["plain"]))
        print(f"| {variant} | {statistics.median(m for m, _ in rows):.1f} | {added:+.1f} | "
              f"{statistics.median(md for _, md in rows):.1f} |")


if __name__ == "__main__":
    main()
