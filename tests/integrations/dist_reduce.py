"""torchrun scenario: a 2-rank DDP-style loop under TrainingMonitor (run by test_distributed).

Each rank logs ``loss = 1000 * rank + step`` style values that differ per rank, so the record
must hold their mean; rank 0 writes the raw per-rank values to ``<out>/raw{rank}.json`` so the
test can compute the single-process reference itself."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

import torch.distributed as dist

from loopwise.watch.monitor import TrainingMonitor


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank = dist.get_rank()
    raw: list[list[float]] = []
    for epoch in range(2):
        values = []
        monitor = TrainingMonitor(range(23), desc=f"epoch {epoch}", root=out,
                                  name="reduce" if epoch == 0 else None)
        for step in monitor:
            value = (step + 1) * 0.37 + rank * 1.5 + epoch / 3
            values.append(value)
            monitor.log({"loss": value})
        raw.append(values)
    with open(os.path.join(out, f"raw{rank}.json"), "w") as f:
        json.dump(raw, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
