"""``make demo``: train a small classifier on scikit-learn's bundled digits (offline) with
TrainingMonitor, then print where the record is and the final metrics."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from loopwise import TrainingMonitor, TrainingSession
from loopwise.record import Run, RunReader
from loopwise.record.active import end_active_run
from loopwise.record.folder import REPORT_FILE


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


Loader = DataLoader[tuple[torch.Tensor, ...]]


def _setup() -> tuple[Loader, Loader, nn.Module, torch.optim.Optimizer]:
    """The same seeded data, MLP and optimizer for each part, so their numbers compare."""
    torch.manual_seed(0)
    train, val = digits_loaders()
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return train, val, model, torch.optim.Adam(model.parameters(), lr=1e-3)


def part_monitor(root: str, epochs: int, data_dir: Path) -> Path:
    """Part 1: a plain PyTorch loop with TrainingMonitor around its loaders (seed 000's loop:
    one monitor per epoch, all in one run; the validation pass with ``phase="val"``)."""
    train, val, model, optimizer = _setup()
    loss_fn = nn.CrossEntropyLoss()
    config = {"model": "mlp-64-128-10", "lr": 1e-3, "batch_size": 64, "epochs": epochs}
    csv_path = data_dir.absolute() / "demo-monitor.csv"  # not in the runs root: not a run
    for epoch in range(1, epochs + 1):
        model.train()
        monitor = TrainingMonitor(train, desc=f"Epoch {epoch}/{epochs}", root=root,
                                  config=config, log_file=csv_path)
        for xb, yb in monitor:
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            acc = (logits.argmax(1) == yb).float().mean()
            monitor.log({"loss": loss, "accuracy": acc})
        model.eval()
        check = TrainingMonitor(val, desc="  validation", phase="val", root=root, leave=False)
        with torch.no_grad():
            for xb, yb in check:
                logits = model(xb)
                check.log({"loss": loss_fn(logits, yb),
                           "accuracy": (logits.argmax(1) == yb).float().mean()})
    run: Run | None = monitor.run
    assert run is not None
    end_active_run()  # the script's run ends here (else: when the process exits)
    reader = RunReader(run.path)
    print(f"\nrun folder : {run.path}")
    print(f"CSV log    : {csv_path}")
    print(f"status     : {reader.status}")
    for key, value in reader.last_values().items():
        print(f"final {key:22s}: {value:.4f}")
    return run.path


def part_session(root: str, epochs: int) -> Path:
    """Part 2: the model summary and a TrainingSession with training and validation phases."""
    train, val, model, optimizer = _setup()
    loss_fn = nn.CrossEntropyLoss()
    with TrainingSession("DigitsMLP", epochs, len(train), len(val), model=model,
                         input_size=(64, 64), root=root) as session:
        session.start_training()
        for epoch in range(1, epochs + 1):
            session.start_epoch(epoch)
            model.train()
            loss_sum, correct, seen = torch.zeros(()), torch.zeros(()), 0
            for step, (xb, yb) in enumerate(train, 1):
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(yb)
                correct += (out.argmax(1) == yb).sum()
                seen += len(yb)
                session.update_training_progress(step, loss_sum / seen, correct / seen)
            session.finish_training_epoch()
            session.start_validation()
            model.eval()
            loss_sum, correct, seen = torch.zeros(()), torch.zeros(()), 0
            with torch.no_grad():
                for step, (xb, yb) in enumerate(val, 1):
                    out = model(xb)
                    loss_sum += loss_fn(out, yb) * len(yb)
                    correct += (out.argmax(1) == yb).sum()
                    seen += len(yb)
                    session.update_validation_progress(step, loss_sum / seen, correct / seen)
            session.finish_validation_epoch()
            session.print_epoch_summary()
        path = session.run.path if session.run is not None else Path(root)
    print(f"\nrun folder : {path}")
    return path


def part_fit(root: str, epochs: int, data_dir: Path) -> int:
    """Part 3: ``loopwise fit`` on the digits saved as an .npz file (X, Y)."""
    import numpy as np
    from sklearn.datasets import load_digits

    from loopwise.cli import main as loopwise_cli

    data = data_dir / "digits.npz"
    if not data.exists():  # written once: a rewrite would count as new data (mtime) for fit
        digits = load_digits()
        data.parent.mkdir(parents=True, exist_ok=True)
        np.savez(data, X=digits.data, Y=digits.target)
    argv = ["fit", str(data), "--epochs", str(epochs), "--hidden-size", "128",
            "--num-layers", "2", "--batch-size", "64", "--lr", "0.003", "--root", root,
            "--name", "digits-fit"]
    print("$ loopwise " + " ".join(argv))
    return loopwise_cli(argv)


def cli_command() -> str:
    """The ``loopwise`` command as a fresh shell runs it when pasted: the script next to this
    interpreter (``.venv/bin/loopwise``, relative when it is under the current folder), else
    this interpreter with ``-m loopwise``."""
    script = Path(sys.executable).parent / "loopwise"
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m loopwise"
    try:
        shown = str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        shown = str(script.absolute())
    return shlex.quote(shown)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", default="runs")
    parser.add_argument("--data-dir", default="demo-data",
                        help="where the digits .npz and the monitor's CSV go (not in --root: "
                             "they are not runs)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    torch.set_num_threads(1)  # tiny model: threads only add contention on a 2-core machine
    print("== 1. TrainingMonitor around a plain PyTorch loop ==")
    part_monitor(args.root, args.epochs, data_dir)
    print("\n== 2. Model summary and TrainingSession ==")
    part_session(args.root, args.epochs)
    print("\n== 3. loopwise fit: the ready loop (a second `make demo` finds it done) ==")
    code = part_fit(args.root, max(args.epochs, 8), data_dir)
    report = Path(args.root).absolute() / "digits-fit" / REPORT_FILE
    if code == 0 and not report.exists():  # a second demo finds fit done: write it now
        from loopwise.view.report import write_report

        write_report(report.parent)
    cli, root = cli_command(), shlex.quote(str(args.root))
    print(f"\nall runs   : {cli} runs {root}")
    print(f"dashboard  : {cli} ui {root}   (http://127.0.0.1:8765 by default)")
    print(f"HTML report: {report}")
    return code


if __name__ == "__main__":
    sys.exit(main())
