"""Histograms in the record: what ``Run.log_histogram`` costs the calling thread, and how many
it records per second, against the copy it must make and TensorBoard's ``add_histogram``.

* Caller cost, one tensor of 100M float32 values (10M with --quick) on the CPU: the baseline is
  ``tensor.clone()``, the copy the caller has to make (the issue's budget: no more than the
  device-to-host copy); ``Run.log_histogram`` queues such a copy and returns, binning runs on
  the run's media thread; ``np.histogram`` and TensorBoard's ``SummaryWriter.add_histogram`` bin
  on the caller.
* Sustained rate: 5,000 histograms (1,000 with --quick) of a 10,000-value tensor (a layer's
  weights) logged back to back, timed until they are on disk (the run closed, the
  SummaryWriter closed); the goal is 1,000 histograms/s.

Run: .venv/bin/python bench/bench_media.py [--quick]
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of
from loopwise.record import Run


def caller_variants(root: str, n: int, run: Run) -> dict[str, Callable[[], float]]:
    big = torch.randn(n)

    def clone() -> float:
        t0 = time.perf_counter()
        big.clone()
        return time.perf_counter() - t0

    def log_histogram() -> float:
        t0 = time.perf_counter()
        run.log_histogram("big", big)
        elapsed = time.perf_counter() - t0
        run.flush()  # the binning is not the caller's: wait for it outside the timing
        return elapsed

    def numpy_histogram() -> float:
        t0 = time.perf_counter()
        np.histogram(big.numpy(), bins=64)
        return time.perf_counter() - t0

    variants = {"tensor.clone() (the copy)": clone, "Run.log_histogram": log_histogram,
                "np.histogram on the caller": numpy_histogram}
    if importlib.util.find_spec("tensorboard") is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(tempfile.mkdtemp(dir=root))

        def tensorboard() -> float:
            t0 = time.perf_counter()
            writer.add_histogram("big", big, 0, bins=64)  # type: ignore[no-untyped-call]
            return time.perf_counter() - t0

        variants["TensorBoard add_histogram"] = tensorboard
    return variants


def rate_run(root: str, count: int, values: torch.Tensor) -> float:
    run = Run.create(root)
    t0 = time.perf_counter()
    for step in range(count):
        run.log_histogram(f"layer{step % 20}.weight", values, step=step)
    run.close()
    return count / (time.perf_counter() - t0)


def rate_tensorboard(root: str, count: int, values: torch.Tensor) -> float:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tempfile.mkdtemp(dir=root))
    t0 = time.perf_counter()
    for step in range(count):
        writer.add_histogram(f"layer{step % 20}.weight", values, step, bins=64)  # type: ignore[no-untyped-call]
    writer.close()  # type: ignore[no-untyped-call]
    return count / (time.perf_counter() - t0)


def stored_bytes(root: str, values: torch.Tensor) -> float:
    """Bytes of store per 64-bin histogram (2,000 of them, the empty store subtracted)."""
    with Run.create(root, "empty"):
        pass
    base = os.path.getsize(os.path.join(root, "empty", "store.sqlite"))
    with Run.create(root, "sized") as run:
        for step in range(2000):
            run.log_histogram(f"layer{step % 20}.weight", values, step=step)
    return (os.path.getsize(os.path.join(root, "sized", "store.sqlite")) - base) / 2000


def main() -> None:
    args = arguments(__doc__, rounds=5).parse_args()
    rounds = rounds_of(args)
    n, count = (10_000_000, 1_000) if args.quick else (100_000_000, 5_000)
    values = torch.randn(10_000)
    with tempfile.TemporaryDirectory() as root:
        with Run.create(root, "caller") as run:
            caller = interleaved(caller_variants(root, n, run), rounds=rounds)
        rates: dict[str, Callable[[], float]] = {
            "Run.log_histogram (to disk)": lambda: rate_run(root, count, values)}
        if importlib.util.find_spec("tensorboard") is not None:
            rates["TensorBoard add_histogram (to disk)"] = \
                lambda: rate_tensorboard(root, count, values)
        sustained = interleaved(rates, rounds=rounds)
        size = stored_bytes(root, values)
    call = Table("media_call", f"Caller cost of a histogram of a {n:,}-value float32 tensor "
                 f"(CPU, {rounds} interleaved rounds)", "ms/histogram",
                 baseline="tensor.clone() (the copy)", ratio_label="x the copy")
    for name, samples in caller.items():
        call.add(name, [s * 1e3 for s in samples])
    rate = Table("media_rate", f"Histograms recorded per second ({count:,} of 10,000 values, "
                 f"64 bins, {rounds} interleaved rounds)", "histograms/s",
                 baseline="TensorBoard add_histogram (to disk)"
                 if "TensorBoard add_histogram (to disk)" in sustained else None,
                 ratio_label="x TensorBoard")
    for name, samples in sorted(sustained.items(), key=lambda kv: kv[0] != rate.baseline):
        rate.add(name, samples, note="goal: 1,000/s" if name.startswith("Run") else "")
    rate.notes.append(f"stored size: {size:.0f} bytes per 64-bin histogram in store.sqlite "
                      "(goal: <= 1 KiB)")
    emit([call, rate], args, extra={"bytes_per_histogram": size})


if __name__ == "__main__":
    main()
