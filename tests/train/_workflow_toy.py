"""A small, deterministic Trainer for the Workflow tests, also runnable as a script so that a
test can SIGKILL it at a chosen point and resume it.

    python _workflow_toy.py ROOT NAME EPOCHS [--every N] [--kill epoch:K:where|batch:K:J]
        [--no-end-hook]

``--kill commit:N`` kills inside the N-th checkpoint file commit (manifest written, file not
yet renamed; each save commits last_checkpoint.pth, then last_weights.pt). ``where`` is ``train`` (after the epoch's last batch, before the checkpoint), ``evaluate``
(inside evaluate, after the checkpoint) or ``end`` (at on_epoch_end). ``batch:K:J`` kills
in epoch K right after batch J has been trained. ``--no-end-hook`` leaves out the callback
that defines ``on_epoch_end`` (so the epoch's files are written while the next epoch trains).

``--slow K:J:S`` (for the Ctrl-C tests): from batch J of epoch K on, each step touches
``ROOT/NAME.marker`` and sleeps S seconds, so a test can send SIGINT while the loop runs; a
``KeyboardInterrupt`` is printed and the process exits with 130.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from loopwise.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    LoopState,
    ReduceLROnPlateau,
    TrendWatcher,
)
from loopwise.distributed.sampler import ResumableSampler
from loopwise.train.workflow.runner import Workflow
from loopwise.train.workflow.trainer import Trainer


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class ToyTrainer(Trainer):
    """Dropout, a shuffled loader, Adam, a StepLR scheduler and draws from python's random and
    NumPy in every epoch: every generator a resume has to restore."""

    def __init__(self, args: dict[str, Any] | None, kill: tuple[str, int, Any] | None = None):
        if args is not None:
            self.args = args
        self.kill = kill
        self.slow: tuple[int, int, float, Path] | None = None
        self.epoch = 0
        self.run_epoch = 0  # the epoch of the run the last step was in (1-based)

    def setup(self) -> None:
        torch.manual_seed(self.args["seed"])
        random.seed(self.args["seed"])
        np.random.seed(self.args["seed"])
        g = torch.Generator().manual_seed(1234)
        x = torch.randn(96, 8, generator=g)
        y = (x @ torch.randn(8, 1, generator=g)).squeeze(1) + 0.1 * torch.randn(96, generator=g)
        ds = TensorDataset(x, y)
        self.val = (x[:32], y[:32])
        self.loader = DataLoader(ds, batch_size=self.args["batch_size"],
                                 sampler=ResumableSampler(ds, seed=self.args["seed"]))
        self.model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.args["lr"])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)

    def train_loop(self) -> dict[str, float]:
        self.epoch += 1
        self.model.train()
        scale = 1.0 + random.random() * 0.1 + float(np.random.rand()) * 0.1  # moves the weights
        monitor = self.track(self.loader, "train", disable=True)
        for x, y in monitor:
            loss = ((self.model(x).squeeze(1) - y) ** 2).mean() * scale
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            monitor.log({"loss": loss})
            # Where the loop is, from the monitor's own step (the run's global_step is advanced
            # when the monitor folds its window into the record, not at every step).
            done, batch = divmod(monitor.step - 1, len(self.loader))
            self.run_epoch, batch = done + 1, batch + 1
            if self.slow is not None and self.slow[0] == self.run_epoch \
                    and batch >= self.slow[1]:
                self.slow[3].touch()
                time.sleep(self.slow[2])
            if self.kill and self.kill[0] == "batch" and self.kill[1] == self.run_epoch \
                    and batch == self.kill[2]:
                _kill()
        self.scheduler.step()
        if self.kill == ("epoch", self.run_epoch, "train"):
            _kill()
        return {"train_loss": monitor.averages()["loss"]}

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        with torch.no_grad():
            x, y = self.val
            jitter = torch.rand(()) * 1e-6  # evaluation draws from torch's RNG too
            loss = float(((self.model(x).squeeze(1) - y) ** 2).mean() + jitter)
        if self.kill == ("epoch", self.run_epoch, "evaluate"):
            _kill()
        return {"val_loss": loss}


class KillAtEnd(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: LoopState) -> None:
        if state.epoch == self.epoch:
            _kill()


def toy_callbacks(kill_at_end: int = -1) -> list[Callback]:
    return [KillAtEnd(kill_at_end), EarlyStopping(patience=20),
            ReduceLROnPlateau(patience=1, factor=0.5, min_delta=0.3),  # its counters matter
            LearningRateMonitor(), TrendWatcher(console=None)]


ARGS = {"seed": 3, "lr": 0.01, "batch_size": 8}


def _kill_at_commit(n: int) -> None:
    """SIGKILL inside the n-th checkpoint file commit of this process: after its manifest was
    written, before the file takes its name."""
    from loopwise.checkpoint.store import StagedFile

    original = StagedFile.commit
    calls = {"n": 0}

    def commit(self: StagedFile) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            _kill()
        return original(self)

    StagedFile.commit = commit  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    root, name, epochs = argv[0], argv[1], int(argv[2])
    every = None
    kill: tuple[str, int, Any] | None = None
    slow: tuple[int, int, float, Path] | None = None
    rest = argv[3:]
    no_end_hook = "--no-end-hook" in rest
    rest = [a for a in rest if a != "--no-end-hook"]
    while rest:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--every":
            every = int(value)
        elif flag == "--slow":
            k, j, seconds = value.split(":")
            slow = (int(k), int(j), float(seconds), Path(root) / f"{name}.marker")
        elif flag == "--kill" and value.startswith("commit:"):
            _kill_at_commit(int(value.split(":")[1]))
        elif flag == "--kill":
            kind, k, where = value.split(":")
            kill = (kind, int(k), int(where) if kind == "batch" else where)
    at_end = kill[1] if kill is not None and kill[0] == "epoch" and kill[2] == "end" else -1
    trainer = ToyTrainer(dict(ARGS), kill)
    trainer.slow = slow
    callbacks = toy_callbacks(at_end)
    if no_end_hook:  # no callback defines on_epoch_end: the epoch's writes overlap the next one
        callbacks = callbacks[1:]
    try:
        Workflow(trainer, root, epochs, name, callbacks=callbacks, checkpoint_every=every,
                 system=False).run()
    except KeyboardInterrupt as exc:
        print(f"KeyboardInterrupt: {exc}", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main(sys.argv[1:])
