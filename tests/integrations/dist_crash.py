"""torchrun scenario (run by test_distributed), two parts in one launch (to save a start-up):

0. with ``LOOPWISE_DISTRIBUTED=0``, a TrainingMonitor made on rank 0 alone (``OUT/legacy``);
1. a TrainingSession of 2 epochs (5 training, 2 validation steps) whose values differ per rank:
   each rank writes what it passed to ``OUT/session{rank}.json``; the run ``OUT/session``;
2. a TrainingMonitor loop where rank 1 raises in the loop body (no ``with`` block) while rank 0
   waits in DDP's gradient all-reduce; rank 0's run ``OUT/crash`` must end ``failed`` with rank
   1's traceback."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from loopwise.record import Run
from loopwise.watch.monitor import TrainingMonitor
from loopwise.watch.session import TrainingSession


def session(out: str, rank: int) -> None:
    given: dict[str, list[float]] = {"train": [], "val": []}
    run = Run.create(out, "session") if rank == 0 else None
    s = TrainingSession("Toy", 2, 5, 2, run=run)
    s.start_training()
    for epoch in (1, 2):
        s.start_epoch(epoch)
        for step in range(1, 6):
            loss = epoch + step / 7 + rank * 0.25
            given["train"].append(loss)
            s.update_training_progress(step, loss)
        s.finish_training_epoch()
        s.start_validation()
        for step in range(1, 3):
            loss = epoch / 3 + step + rank * 0.5
            given["val"].append(loss)
            s.update_validation_progress(step, loss)
        s.finish_validation_epoch()
        s.print_epoch_summary()
    s.close()
    if run is not None:
        run.close()
    with open(f"{out}/session{rank}.json", "w") as f:
        json.dump(given, f)


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group("gloo", timeout=timedelta(seconds=20))
    rank = dist.get_rank()
    os.environ["LOOPWISE_DISTRIBUTED"] = "0"  # the opt-out: a monitor on rank 0 alone
    if rank == 0:
        legacy = TrainingMonitor(range(3), desc="legacy", root=out, name="legacy")
        for _ in legacy:
            legacy.log({"loss": 1.0})
        legacy.close()
    del os.environ["LOOPWISE_DISTRIBUTED"]
    dist.barrier()
    session(out, rank)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in TrainingMonitor(range(1000), desc="train", root=out, name="crash"):
        if rank == 1 and step == 7:
            raise ValueError("boom on rank 1")
        loss = model(torch.ones(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
