"""On a CUDA device: the per-step wall time of a plain training loop against the same loop under
TrainingMonitor (loss logged as a CUDA tensor every step) and TrainingSession, and fit; MLP
784-512-512-10, batch 128, Adam, data already on the device. Interleaved rounds, best of each.

Run: PYTHONPATH=src python bench/bench_gpu.py
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable

import torch

from loopwise import TrainingConfig, TrainingMonitor, TrainingSession, fit
from loopwise.record.active import end_active_run

STEPS = 400


def make() -> tuple[torch.nn.Module, torch.optim.Optimizer, list[tuple[torch.Tensor, ...]]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = [(torch.randn(128, 784, device="cuda"), torch.randint(0, 10, (128,), device="cuda"))
            for _ in range(STEPS)]
    return model, opt, data


def step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
         y: torch.Tensor) -> torch.Tensor:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def plain() -> float:
    model, opt, data = make()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x, y in data:
        step(model, opt, x, y)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def monitored(root: str) -> float:
    model, opt, data = make()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    monitor = TrainingMonitor(data, root=root, file=io.StringIO())
    for x, y in monitor:
        monitor.log({"loss": step(model, opt, x, y)})
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    end_active_run()
    return elapsed


def session(root: str) -> float:
    model, opt, data = make()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    s = TrainingSession("bench", 1, STEPS, 0, root=root, file=io.StringIO())
    s.start_training()
    s.start_epoch(1)
    for i, (x, y) in enumerate(data, 1):
        s.update_training_progress(i, step(model, opt, x, y))
    s.finish_training_epoch()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def fitted(root: str) -> float:
    model, opt, data = make()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(model, data, loss_fn=torch.nn.CrossEntropyLoss(), optimizer=opt,
        config=TrainingConfig(epochs=1, device="cuda"), root=root, plots=False, progress=False)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(rounds: int = 5) -> None:
    with tempfile.TemporaryDirectory() as root:
        variants: dict[str, Callable[[], float]] = {
            "plain loop": plain, "TrainingMonitor": lambda: monitored(root),
            "TrainingSession": lambda: session(root), "fit (with its setup)": lambda: fitted(root)}
        for fn in variants.values():  # warm-up: CUDA context, kernels, allocator
            fn()
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds):
            for name, fn in variants.items():
                best[name] = min(best[name], fn())
    base = best["plain loop"]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {STEPS} steps, "
          f"best of {rounds} interleaved rounds")
    print(f"{'loop':18s} {'us/step':>9s} {'x plain':>8s}")
    for name, secs in best.items():
        print(f"{name:18s} {secs / STEPS * 1e6:9.1f} {secs / base:8.3f}")


if __name__ == "__main__":
    main()
