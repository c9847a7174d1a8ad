"""Where an entry point's added time falls in an epoch: the training thread's CPU time
(``time.thread_time``) of every step, by its position in the epoch, against the plain loop.

The workers of ``bench/entry_points.py`` (tiny model, 100-step epochs, one torch thread), each
in a fresh process, one after the other; the loss function notes the thread's CPU time as each
step's forward pass ends, so "the epoch boundary" is from the last step of one epoch to the
first of the next (the pass end, the epoch's records and saves, the next pass's start), "steps
1-5" are the first steps of an epoch (where a background write started at the boundary takes
the GIL) and "steps 10-99" the rest. Medians over the epochs after the first.

Diagnostic variants of Workflow (not loopwise options; the methods are replaced in the worker):
``workflow:nosave`` (no checkpoint, no run.json progress: what the rest costs) and
``workflow:sync`` (the same writes on the training thread instead of the background thread).

Run: .venv/bin/python bench/epoch_profile.py [--epochs 31] [plain monitor session ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
import entry_points

STEPS = 100  # the tiny model's steps per epoch
DEFAULT = ["plain", "monitor", "session", "workflow", "workflow:nosave", "workflow:sync", "fit"]


def _patch(variant: str) -> None:
    if variant.endswith(":nosave"):
        from loopwise.train.workflow.runner import Workflow

        Workflow._save = lambda self, *a, **k: None
        Workflow._progress = lambda self, *a, **k: None
    elif variant.endswith(":sync"):
        from loopwise.checkpoint.named import NamedFiles

        def save_later(self: Any, files: Any, *, step: int, metrics: Any = None,
                       before: Any = None) -> None:
            if before is not None:
                before()
            self.save(dict(files), step=step, metrics=metrics)

        NamedFiles.save_later = save_later
        NamedFiles.write_later = lambda self, job: job()


def worker(variant: str, epochs: int, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    _patch(variant)
    x, y, net, (loss_fn, make_opt) = entry_points._data("tiny")
    stamps: list[float] = []

    def timed_loss(output: Any, target: Any) -> Any:
        stamps.append(time.thread_time())
        return loss_fn(output, target)

    loader = entry_points._loader(x, y, 32, [])
    os.chdir(tempfile.mkdtemp(prefix="epoch_profile-"))
    entry_points._train(variant.split(":")[0], "tiny", epochs, loader, net, timed_loss,
                        make_opt)
    by_position: list[list[float]] = [[] for _ in range(STEPS)]
    for epoch in range(1, epochs):
        for i in range(STEPS):
            k = epoch * STEPS + i
            by_position[i].append((stamps[k] - stamps[k - 1]) * 1e6)
    with open(out, "w") as f:
        json.dump([statistics.median(p) for p in by_position]
                  + [statistics.mean(v for p in by_position[10:] for v in p)], f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=DEFAULT)
    parser.add_argument("--epochs", type=int, default=31)
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "EPOCHS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        for variant in args.variants:
            subprocess.run([sys.executable, __file__, "--worker", variant, str(args.epochs), out],
                           check=True, stderr=subprocess.DEVNULL)
            with open(out) as f:
                rows[variant] = json.load(f)
    base = rows.get("plain")
    print(f"Training-thread CPU by a step's position, tiny model, {STEPS}-step epochs, median "
          f"over {args.epochs - 1} epochs (us)")
    print("| what | epoch boundary | steps 1-5 | steps 10-99, mean | whole epoch | "
          "added per epoch |")
    print("|---|---|---|---|---|---|")
    for variant, r in rows.items():
        epoch = sum(r[:STEPS])
        added = "" if base is None else f"{(epoch - sum(base[:STEPS])) / 1e3:+.2f} ms"
        print(f"| {variant} | {r[0]:.0f} | {' '.join(f'{v:.0f}' for v in r[1:6])} | "
              f"{r[STEPS]:.1f} | {epoch / 1e3:.2f} ms | {added} |")


if __name__ == "__main__":
    main()
