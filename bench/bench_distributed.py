"""Per-step cost of TrainingMonitor in a 2-rank DDP loop under torchrun (gloo, CPU) against the
same loop without it.

Both variants train a small DDP model (Linear 64 -> 64, batch 32) for ``STEPS`` steps; the
monitored one wraps the batches in a TrainingMonitor (bar on rank 0, the record written by rank
0, one all_gather every refresh) and logs the loss (a CPU tensor) each step; its run folder is
made and closed outside the timed loop. They run
interleaved, one of each per round, for ``ROUNDS`` rounds; rank 0 reports the best and median
wall time per step of each and the overhead. Both ranks run the same code, so both time the
same thing.

Run: .venv/bin/python bench/bench_distributed.py   (it starts torchrun itself)
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

STEPS = 1000
ROUNDS = 9


def worker() -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from loopwise.watch.monitor import TrainingMonitor

    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(64, 64))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 64), torch.randn(32, 64)
    batches = [(x, y)] * STEPS
    root = tempfile.mkdtemp(prefix="loopwise-bench-dist-")

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def plain() -> None:
        for xb, yb in batches:
            step(xb, yb)

    def monitored(i: int) -> float:
        """Seconds of the loop alone (the pass-end exchange included; making the run folder
        and closing it are not per-step costs)."""
        monitor = TrainingMonitor(batches, desc="bench", root=root, name=f"r{i}",
                                  file=io.StringIO())
        dist.barrier()
        t0 = time.perf_counter()
        for xb, yb in monitor:
            monitor.log({"loss": step(xb, yb).detach()})
        elapsed = time.perf_counter() - t0
        monitor.close()
        return elapsed

    times: dict[str, list[float]] = {"plain DDP loop": [], "with TrainingMonitor": []}
    plain()  # warm-up
    for i in range(ROUNDS):
        dist.barrier()
        t0 = time.perf_counter()
        plain()
        times["plain DDP loop"].append(time.perf_counter() - t0)
        times["with TrainingMonitor"].append(monitored(i))
    if rank == 0:
        base = min(times["plain DDP loop"]) / STEPS
        print(f"{STEPS} steps x {ROUNDS} rounds, 2 ranks (gloo, CPU)")
        print(f"{'variant':<22} {'best us/step':>12} {'median us/step':>15} {'overhead':>9}")
        for name, ts in times.items():
            best, med = min(ts) / STEPS, statistics.median(ts) / STEPS
            print(f"{name:<22} {best * 1e6:>12.0f} {med * 1e6:>15.0f} "
                  f"{(best / base - 1) * 100:>8.1f}%")
    dist.barrier()
    shutil.rmtree(root, ignore_errors=True)
    dist.destroy_process_group()


def main() -> None:
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.abspath(__file__), "--worker"]
    raise SystemExit(subprocess.call(cmd, env=env))


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
