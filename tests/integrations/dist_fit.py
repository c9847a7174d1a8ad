"""torchrun scenario (run by test_distributed_fit): ``fit()`` unchanged on 2 ranks.

``python -m torch.distributed.run ... dist_fit.py OUT MODE [KILL_AT]``; MODE is ``full`` (train
3 epochs), ``kill`` (at training step KILL_AT rank 0 writes ``OUT/kill_now`` and waits: the
test then SIGKILLs the whole group) or ``resume`` (the same call again: fit resumes the run
from its last checkpoint). The run is ``OUT/fit``; rank 0 writes the final weights to
``OUT/final.pt`` (before fit loads the best ones back). MODE ``crash``: rank 1's loss raises
at training step 6, while rank 0 goes on into DDP's all-reduce. The test imports this module for the
single-process reference (:func:`dataset`, :func:`make_model`, :func:`config`)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.train.callbacks import Callback
from loopwise.train.fit.config import TrainingConfig

EPOCHS = 3


def dataset() -> tuple[TensorDataset, TensorDataset]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1, generator=gen)
    return TensorDataset(x, y), TensorDataset(x[:16], y[:16])


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 1)


def config() -> TrainingConfig:
    return TrainingConfig(model_name="toy", epochs=EPOCHS, checkpoint_every=1, device="cpu",
                          patience=0, lr_patience=0, seed=42)


class KillAt:
    """The MSE loss; on rank 0 at training step ``at`` it tells the test to kill the group; at
    step ``boom`` it raises."""

    def __init__(self, at: int = -1, out: Path | None = None, boom: int = -1) -> None:
        self.at, self.out, self.n, self.boom = at, out, 0, boom

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.n += 1
            if self.n == self.boom:
                raise ValueError("boom on rank 1")
            if self.n == self.at and self.out is not None:
                (self.out / "kill_now").write_text("")
                time.sleep(60)
        return torch.nn.functional.mse_loss(output, target)


class SaveFinal(Callback):
    """Rank 0 keeps the weights training ended with (``OUT/final.pt``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def on_train_end(self, state: Any) -> None:
        if self.path is not None:
            torch.save(state.model.state_dict(), self.path)


def start_rank() -> tuple[Path, str, int, int]:
    """``(OUT, MODE, KILL_AT, rank)`` of a scenario launched with ``OUT MODE [KILL_AT]``: the
    gloo group joined and this rank's PID in ``OUT/pid{rank}`` (for the test's SIGKILL)."""
    import torch.distributed as dist

    out, mode = Path(sys.argv[1]), sys.argv[2]
    kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank = dist.get_rank()
    (out / f"pid{rank}").write_text(str(os.getpid()))
    return out, mode, kill_at, rank


def main() -> None:
    import torch.distributed as dist

    from loopwise.train.fit.entry import fit

    out, mode, kill_at, rank = start_rank()
    train, val = dataset()
    model = make_model()
    result = fit(model, DataLoader(train, batch_size=4, shuffle=True),
                 val_loader=DataLoader(val, batch_size=4),
                 loss_fn=KillAt(kill_at if mode == "kill" and rank == 0 else -1, out,
                                boom=6 if mode == "crash" and rank == 1 else -1),
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                 config=config(), callbacks=[SaveFinal(out / "final.pt" if rank == 0 else None)],
                 root=out, name="fit", plots=False, report=False)
    assert result.status == "finished", result.status
    (out / f"result{rank}.json").write_text(json.dumps(result.val_losses))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
