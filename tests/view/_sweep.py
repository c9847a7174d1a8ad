"""A hyperparameter sweep: each run has a nested config (optimizer.lr, model.width, ...), a
per-step ``loss`` and ``lr`` and per-epoch ``val_loss`` / ``val_acc``. Values follow from the
config, so the best run is known: the lr closest to 3e-3 with the widest model.

``make_sweep`` writes every run through the record API (``Run.create``: about 60 ms a run,
most of it fsync). ``clone_sweep`` makes 1,000 runs in a second or two: ``templates`` real runs,
then folders whose ``run.json`` (name, id, start) and ``config.json`` (the template's config,
its own seed) are new and whose store and log are hard links to the template's (the readers
open them read-only), so every run's metrics still follow its config."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from loopwise.record import Run

OPTIMIZERS = ("adam", "sgd", "adamw", "lion")


def sweep_config(i: int) -> dict[str, Any]:
    lr = 10 ** (-4 + 3 * ((i * 37) % 100) / 100)
    return {"optimizer": {"name": OPTIMIZERS[i % 4], "lr": round(lr, 8),
                          "weight_decay": [0.0, 0.01, 0.1][i % 3]},
            "model": {"width": [64, 128, 256, 512][(i // 4) % 4], "depth": 2 + i % 5},
            "batch_size": [32, 64][i % 2], "seed": i}


def sweep_metrics(config: dict[str, Any], epoch: int) -> tuple[float, float]:
    lr, width = config["optimizer"]["lr"], config["model"]["width"]
    quality = abs(math.log10(lr) - math.log10(3e-3)) + 64 / width
    val_loss = 0.1 + quality * 0.3 + 1.0 / epoch
    return val_loss, 1.0 / (1.0 + val_loss)


def make_sweep(root: Path, count: int, *, steps: int = 20, epochs: int = 3,
               start: int = 0) -> list[str]:
    """``count`` finished runs named ``sweep-0000``...; returns their names."""
    names = []
    t0 = 1_700_000_000.0
    for i in range(start, start + count):
        name = f"sweep-{i:04d}"
        config = sweep_config(i)
        clock = iter([t0 + i * 60.0 + k for k in range(1000)])
        with Run.create(root, name, config=config, flush_interval=1.0,
                        clock=lambda c=clock: next(c)) as run:  # type: ignore[misc]
            per_epoch = steps // epochs
            for step in range(1, steps + 1):
                run.log_scalars({"loss": 2.0 / step + i % 7 * 0.01,
                                 "lr": config["optimizer"]["lr"]}, step=step,
                                wall_time=t0 + i * 60.0 + step)
                if step % per_epoch == 0 and step // per_epoch <= epochs:
                    epoch = step // per_epoch
                    val_loss, val_acc = sweep_metrics(config, epoch)
                    run.log_epoch(epoch, {"val_loss": val_loss, "val_acc": val_acc}, step=step)
        names.append(name)
    return names


def clone_sweep(root: Path, count: int, *, templates: int = 40) -> list[str]:
    """``count`` runs ``sweep-0000``...: the first ``templates`` written by :func:`make_sweep`,
    the others clones of them (module docstring)."""
    real = make_sweep(root, min(templates, count))
    names = list(real)
    for i in range(len(real), count):
        template = root / real[i % len(real)]
        name = f"sweep-{i:04d}"
        folder = root / name
        folder.mkdir()
        info = json.loads((template / "run.json").read_text())
        shift = (i - i % len(real)) * 60.0
        info.update(id=f"{i:032x}", name=name, start_time=info["start_time"] + shift,
                    end_time=info["end_time"] + shift, heartbeat=info["heartbeat"] + shift)
        config = json.loads((template / "config.json").read_text())
        config["seed"] = i
        (folder / "config.json").write_text(json.dumps(config))
        for file in ("store.sqlite", "log.jsonl"):
            os.link(template / file, folder / file)
        (folder / "run.json").write_text(json.dumps(info))
        names.append(name)
    return names


if __name__ == "__main__":  # python _sweep.py ROOT COUNT
    clone_sweep(Path(sys.argv[1]), int(sys.argv[2]))
