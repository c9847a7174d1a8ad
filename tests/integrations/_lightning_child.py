"""Child process of test_lightning.py: a real ``Trainer.fit`` (CPU, a tiny MLP on fixed random
data) with loopwise's logger and callback, and what the test checks written as JSON.

Usage: python _lightning_child.py MODE WORKDIR  (MODE: full, kill, resume)
- full: 3 epochs of 6 steps, a checkpoint every 4 steps; then a fit whose training_step raises
  at step 3, and one stopped by Ctrl-C at step 3, the status read right after each;
- kill: the same, SIGKILLed at step 10 (the record holds steps 9 and 10, which the resume
  from the step-8 checkpoint runs again);
- resume: ``fit(ckpt_path=<step 8>)`` to the end, into the killed run.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from _trainer_child_common import ListRecorder, write_result
from lightning.pytorch.callbacks import ModelCheckpoint

from loopwise.lightning import LoopwiseCallback, LoopwiseLogger
from loopwise.record import RunReader

EPOCHS, STEPS = 3, 6


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.05, fail_at: int = 0, error: str = "") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                       torch.nn.Linear(16, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.hparams.fail_at and self.global_step + 1 == self.hparams.fail_at:
            raise KeyboardInterrupt if self.hparams.error == "ctrl-c" else RuntimeError("boom")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("mae", (self.net(x) - y).abs().mean())
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS * 8, 8, generator=g)
    y = x.sum(dim=1, keepdim=True)
    data = torch.utils.data.TensorDataset(x, y)
    return (torch.utils.data.DataLoader(data, batch_size=8),
            torch.utils.data.DataLoader(data, batch_size=16))


class KillAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        if trainer.global_step == self.step:
            logger = trainer.logger
            logger.steps.flush()  # steps 9 and 10 reach the record before the kill
            logger.run.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def trainer(work: Path, logger: LoopwiseLogger, *extra: Any) -> L.Trainer:
    ckpt = ModelCheckpoint(dirpath=work / "ckpt", filename="ck-{step}", every_n_train_steps=4,
                           save_top_k=-1)
    return L.Trainer(max_epochs=EPOCHS, logger=logger, callbacks=[LoopwiseCallback(), ckpt,
                                                                   *extra],
                     enable_model_summary=False, log_every_n_steps=1, accelerator="cpu",
                     deterministic=True)


def main(mode: str, work: Path) -> None:
    torch.manual_seed(0)
    train, val = loaders()
    recorder = ListRecorder()
    name = "lit-full" if mode == "full" else "lit-kill"
    logger = LoopwiseLogger(root=work / "runs", name=name, exporters=[recorder],
                            flush_interval=0.05)
    extra = [KillAt(10)] if mode == "kill" else []
    t = trainer(work / mode if mode != "resume" else work / "kill", logger, *extra)
    ckpt = str(work / "kill" / "ckpt" / "ck-step=8.ckpt") if mode == "resume" else None
    t.fit(Tiny(), train, val, ckpt_path=ckpt)
    result: dict[str, Any] = {**recorder.result(), "run": str(logger.run.path)}
    if mode == "full":
        for error in ("exception", "ctrl-c"):
            logger = LoopwiseLogger(root=work / "runs", name=f"lit-{error}")
            t = L.Trainer(max_epochs=1, logger=logger, callbacks=[LoopwiseCallback()],
                          enable_checkpointing=False, enable_model_summary=False)
            try:
                t.fit(Tiny(fail_at=3, error=error), train, val)
            except (RuntimeError, SystemExit) as exc:
                result[error] = {"raised": type(exc).__name__,
                                 "status": RunReader(logger.run.path).info["status"],
                                 "events": [e.kind for e in RunReader(logger.run.path).events()]}
    write_result(work, mode, result)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
