"""``make demo``: train a small classifier on scikit-learn's bundled digits (offline) with
TrainingMonitor, then print where the record is and the final metrics."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from loopwise import TrainingMonitor
from loopwise.record import Run, RunReader


def digits_loaders(
    *, batch_size: int = 64, seed: int = 0
) -> tuple[DataLoader[tuple[torch.Tensor, ...]], DataLoader[tuple[torch.Tensor, ...]]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the demo extra is installed by make demo
        raise ImportError("the demo needs scikit-learn: pip install 'loopwise[demo]'") from exc
    x, y = load_digits(return_X_y=True)
    xt = torch.tensor(x / 16.0, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(xt), generator=g)
    split = int(0.8 * len(xt))
    train = TensorDataset(xt[perm[:split]], yt[perm[:split]])
    val = TensorDataset(xt[perm[split:]], yt[perm[split:]])
    return (DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
            DataLoader(val, batch_size=256))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--root", default="runs")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    torch.manual_seed(0)
    train, val = digits_loaders()
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    config = {"model": "mlp-64-128-10", "lr": 1e-3, "batch_size": 64, "epochs": args.epochs}
    with Run.create(args.root, config=config) as run:
        csv_path = run.path / "train.csv"
        for epoch in range(1, args.epochs + 1):
            model.train()
            monitor = TrainingMonitor(train, desc=f"Epoch {epoch}/{args.epochs}", run=run,
                                      log_file=csv_path)
            for xb, yb in monitor:
                optimizer.zero_grad()
                logits = model(xb)
                loss = loss_fn(logits, yb)
                loss.backward()
                optimizer.step()
                acc = (logits.argmax(1) == yb).float().mean()
                monitor.log({"loss": loss, "accuracy": acc})
            model.eval()
            correct = total = 0
            with torch.no_grad():
                for xb, yb in val:
                    correct += int((model(xb).argmax(1) == yb).sum())
                    total += len(yb)
            run.log_scalars({"val_accuracy": correct / total}, step=monitor.step)
    reader = RunReader(run.path)
    print()
    print(f"run folder : {run.path}")
    print(f"CSV log    : {csv_path}")
    print(f"status     : {reader.status}")
    for key, value in reader.last_values().items():
        print(f"final {key:12s}: {value:.4f}")
    print(f"list runs  : loopwise runs {Path(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
