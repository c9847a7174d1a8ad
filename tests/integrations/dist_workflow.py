"""torchrun scenario (run by test_distributed_workflow): a ``Workflow`` unchanged on 2 ranks.

``python -m torch.distributed.run ... dist_workflow.py OUT MODE [KILL_AT]``; MODE is ``full``
(3 epochs), ``kill`` (at global step KILL_AT rank 0 writes ``OUT/kill_now`` and waits: the test
then SIGKILLs the whole group) or ``resume`` (the same call again: the Workflow resumes from
its last mid-epoch checkpoint, saved every 3 batches) or ``crash`` (rank 1 raises at global
step 6). The experiment is ``OUT/wf``. The test
imports this module for the single-process reference (:class:`Toy`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from loopwise.train.workflow.trainer import Trainer

EPOCHS, EVERY = 3, 3


def _dataset() -> Any:
    spec_dir = Path(__file__).parent
    sys.path.insert(0, str(spec_dir))
    from dist_fit import dataset  # the same data as the fit scenario

    return dataset()


class Toy(Trainer):
    """A linear regression trained with SGD; ``loader``/``val_loader`` replace the default
    ones (the reference's); at global step ``kill_at`` it asks to be killed."""

    def __init__(self, *, loader: Any = None, val_loader: Any = None, kill_at: int = -1,
                 out: Path | None = None, boom: int = -1) -> None:
        self.args = {"lr": 0.05, "momentum": 0.9}
        self._loaders = (loader, val_loader)
        self.kill_at, self.out, self.boom = kill_at, out, boom

    def setup(self) -> None:
        train, val = _dataset()
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.args["lr"],
                                         momentum=self.args["momentum"])
        self.loader = self._loaders[0] or DataLoader(train, batch_size=4, shuffle=True)
        self.val_loader = self._loaders[1] or DataLoader(val, batch_size=4)

    def train_loop(self) -> dict[str, float]:
        monitor = self.track(self.loader, "train")
        for x, y in monitor:
            loss = torch.nn.functional.mse_loss(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            monitor.log({"loss": loss.detach()})
            if monitor.step == self.boom:
                raise ValueError("boom on rank 1")
            if monitor.step == self.kill_at and self.out is not None:
                (self.out / "kill_now").write_text("")
                time.sleep(60)
        return {"train_loss": monitor.averages()["loss"]}

    def evaluate(self) -> dict[str, float]:
        total, rows = 0.0, 0
        with torch.no_grad():
            for x, y in self.track(self.val_loader, "val"):
                total += float(torch.nn.functional.mse_loss(self.model(x), y, reduction="sum"))
                rows += len(y)
        return {"val_loss": total / rows}


def main() -> None:
    import torch.distributed as dist

    from loopwise.train.workflow.runner import Workflow

    sys.path.insert(0, str(Path(__file__).parent))
    from dist_fit import start_rank  # the same launch as the fit scenario

    out, mode, kill_at, rank = start_rank()
    toy = Toy(kill_at=kill_at if mode == "kill" and rank == 0 else -1, out=out,
              boom=6 if mode == "crash" and rank == 1 else -1)
    result = Workflow(toy, out, EPOCHS, "wf", checkpoint_every=EVERY, report=False).run()
    assert result.status == "finished" and result.epochs_done == EPOCHS, result
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
