"""torchrun scenario: rank 1 raises in the loop body (no ``with`` block) while rank 0 waits in
DDP's gradient all-reduce; rank 0's run must end ``failed`` with rank 1's traceback."""

from __future__ import annotations

import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from loopwise.watch.monitor import TrainingMonitor


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group("gloo", timeout=timedelta(seconds=20))
    rank = dist.get_rank()
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
