"""torchrun scenario (run by test_distributed): DDP training under TrainingMonitor with a
DistributedSampler and checkpoints every 5 steps.

``python -m torch.distributed.run ... dist_train.py OUT MODE [KILL_AT]``; MODE is ``full`` (train
to the end), ``kill`` (at global step KILL_AT rank 0 writes ``OUT/kill_now`` and waits: the test
then SIGKILLs torchrun's process group and every worker) or ``resume`` (continue from the last
checkpoint). Each rank writes its own
per-step losses to ``OUT/raw{rank}.json`` and its validation losses (2 batches per epoch, a
``phase="val"`` monitor) to ``OUT/val{rank}.json``; rank 0 writes the final weights to ``OUT/final.pt``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from loopwise.checkpoint.distributed import (
    load_checkpoint,
    save_checkpoint,
    skip_batches,
)
from loopwise.record import Run
from loopwise.watch.monitor import TrainingMonitor

EPOCHS, EVERY = 3, 5


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank = dist.get_rank()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1, generator=gen)
    sampler = DistributedSampler(TensorDataset(x, y), shuffle=True, seed=0)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, sampler=sampler)
    val_sampler = DistributedSampler(TensorDataset(x[:16], y[:16]), shuffle=False)
    val_loader = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=4, sampler=val_sampler)
    val_raw: list[float] = []
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    model = DistributedDataParallel(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ckpt = out / "ckpt.pt"
    start_epoch, skip, run, mon_state = 0, 0, None, None
    if mode == "resume":
        state = load_checkpoint(ckpt, sampler=sampler)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, skip = state["distributed"]["sampler_epoch"], state["distributed"][
            "batches_done"]
        mon_state = state["monitor"]
        run = Run.reopen(out / "train") if rank == 0 else None
    raw_path = out / f"raw{rank}.json"
    raw: list[float] = json.loads(raw_path.read_text()) if mode == "resume" else []
    if skip == len(loader):  # saved at the end of an epoch: the next one
        start_epoch, skip = start_epoch + 1, 0
    (out / f"pid{rank}").write_text(str(os.getpid()))
    for epoch in range(start_epoch, EPOCHS):
        sampler.set_epoch(epoch)
        batches = skip_batches(loader, skip) if skip else loader
        monitor = TrainingMonitor(batches, desc=f"epoch {epoch}", total=len(loader) - skip,
                                  root=out, name="train" if epoch == 0 and run is None else None,
                                  run=run)
        if mon_state is not None:
            monitor.load_state_dict(mon_state)
            mon_state = None
        done = skip
        skip = 0
        for xb, yb in monitor:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            raw.append(float(loss.detach()))
            monitor.log({"loss": raw[-1]})
            done += 1
            time.sleep(0.1 if mode == "full" else 0.0)
            if monitor.step % EVERY == 0:
                raw_path.write_text(json.dumps(raw))
                save_checkpoint(ckpt, {"model": net.state_dict(), "optimizer": opt.state_dict(),
                                       "monitor": monitor.state_dict()},
                                sampler=sampler, batches_done=done)
            if monitor.step == kill_at and rank == 0:  # the test SIGKILLs the group now
                (out / "kill_now").write_text("")
                time.sleep(60)
        val = TrainingMonitor(val_loader, desc=f"val {epoch}", phase="val", run=run,
                              root=out)
        with torch.no_grad():
            for xb, yb in val:
                val_raw.append(float(torch.nn.functional.mse_loss(model(xb), yb)))
                val.log({"loss": val_raw[-1]})
    raw_path.write_text(json.dumps(raw))
    (out / f"val{rank}.json").write_text(json.dumps(val_raw))
    if rank == 0:
        torch.save(net.state_dict(), out / "final.pt")
        if run is not None:
            run.close()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
