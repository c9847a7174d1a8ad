"""A training process for the kill campaign (test_kills*.py), run as a script:

    python _kill_child.py ENTRY ROOT NAME OUT [--kill KIND:N] [--census FILE] [--trace FILE]

ENTRY is the entry point trained: ``fit``, ``workflow``, ``monitor`` (a hand-written loop with
TrainingMonitor and a CheckpointManager the script saves through), ``exporters`` (the same loop
with a TensorBoard and an MLflow exporter attached; MLflow at ``sqlite:///ROOT/mlflow.db``) or
``keras`` (the Keras callback; KERAS_BACKEND must be set). Every entry trains 4 epochs on the
CPU with deterministic ops and writes the final weights to OUT; run again with the same
arguments it resumes the run ROOT/NAME.

``--kill KIND:N`` SIGKILLs the process at the N-th time it reaches a named point (counted from
this process's start):

- ``step``: right after a training step (the optimizer's step hook; Keras: the batch end);
- ``write``: inside a checkpoint file write (a chunk of torch.save into the temp file);
- ``commit``: inside a checkpoint commit (the manifest already lists the new file, which is
  not yet renamed into place);
- ``flush``: inside a write transaction of the run's store (a key of a flush batch);
- ``export``: inside an exporter's delivery (``exporters`` only).

``--census FILE`` writes how often each point was reached (JSON) at a normal exit, so that a
test can draw kill points inside the run. ``--trace FILE`` gets one line per training step
(its wall time) and ``kill <time>`` just before the SIGKILL: unbuffered writes, which survive it.
Each step sleeps ``STEP_SLEEP`` seconds so that a run spans several refresh intervals.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

STEP_SLEEP = 0.006
EPOCHS = 4
POINTS = ("step", "write", "commit", "flush", "export")


class KillSwitch:
    """Counts the named points and SIGKILLs this process at the one asked for."""

    def __init__(self, kill: str | None, trace: str | None) -> None:
        self.counts: Counter[str] = Counter()
        self.kind, self.at = (None, 0) if kill is None else (kill.split(":")[0],
                                                              int(kill.split(":")[1]))
        if self.kind is not None and self.kind not in POINTS:
            raise SystemExit(f"unknown kill point {self.kind!r}; one of {POINTS}")
        self.trace = None if trace is None else os.open(trace, os.O_WRONLY | os.O_CREAT
                                                        | os.O_APPEND, 0o644)

    def reached(self, point: str) -> None:
        self.counts[point] += 1
        if point == "step":
            if self.trace is not None:
                os.write(self.trace, f"{time.time():.6f}\n".encode())
            time.sleep(STEP_SLEEP)
        if point == self.kind and self.counts[point] == self.at:
            if self.trace is not None:
                os.write(self.trace, f"kill {time.time():.6f}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)


def install(switch: KillSwitch) -> None:
    """Patch the named points (the library is used as is; only this process is patched)."""
    from loopwise.checkpoint.hashing import HashingWriter
    from loopwise.checkpoint.store import StagedFile
    from loopwise.export.base import Exporter
    from loopwise.record.store import StoreWriter

    def wrap(cls: Any, method: str, point: str) -> None:
        original = getattr(cls, method)

        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            switch.reached(point)  # inside the write / commit / transaction / delivery
            return original(self, *args, **kwargs)

        setattr(cls, method, patched)

    wrap(HashingWriter, "write", "write")
    wrap(StagedFile, "commit", "commit")
    wrap(StoreWriter, "_key_id", "flush")
    wrap(Exporter, "_deliver", "export")


def _data(n: int = 160, features: int = 6) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(1234)
    x = torch.randn(n, features, generator=g)
    y = (x @ torch.randn(features, 1, generator=g)) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def _net() -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))


def train_fit(root: Path, name: str, out: Path, switch: KillSwitch) -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from loopwise.train.callbacks import Callback, LoopState
    from loopwise.train.fit.config import TrainingConfig
    from loopwise.train.fit.entry import fit

    class SaveFinal(Callback):
        def on_train_end(self, state: LoopState) -> None:
            torch.save(state.model.state_dict(), out)

    torch.manual_seed(0)
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(1))
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16)
    config = TrainingConfig(epochs=EPOCHS, patience=0, lr_patience=0, checkpoint_every=1,
                            model_name="net", device="cpu")
    fit(_net(), loader, loss_fn=torch.nn.MSELoss(), val_loader=val, config=config, root=root,
        name=name, callbacks=[SaveFinal()], plots=False, progress=False, system=False)


def train_workflow(root: Path, name: str, out: Path, switch: KillSwitch) -> None:
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer, toy_callbacks

    from loopwise.train.workflow.runner import Workflow

    Workflow(ToyTrainer(dict(ARGS)), root, EPOCHS, name, callbacks=toy_callbacks(),
             checkpoint_every=5, system=False).run()
    shutil.copyfile(root / name / "last_weights.pt", out)


def train_monitor(root: Path, name: str, out: Path, switch: KillSwitch, *,
                  exporters: bool = False) -> None:
    """A user's own loop: TrainingMonitor for the record, CheckpointManager for the state
    (every 7 steps), resumed from the newest verified checkpoint."""
    import torch

    from loopwise.checkpoint.manager import CheckpointManager
    from loopwise.distributed.rng import capture_rng_state, restore_rng_state
    from loopwise.record import Run
    from loopwise.watch.monitor import TrainingMonitor

    folder = root / name
    run = Run.reopen(folder) if (folder / "run.json").is_file() else Run.create(
        root, name, config={"lr": 0.01, "batch_size": 8})
    if exporters:
        from loopwise.export.mlflow import MLflowExporter
        from loopwise.export.tensorboard import TensorBoardExporter

        run.add_exporter(TensorBoardExporter())
        run.add_exporter(MLflowExporter(f"sqlite:///{root.resolve()}/mlflow.db"))
    manager = CheckpointManager(folder / "checkpoints", keep_last=2, run=run)
    torch.manual_seed(0)
    x, y = _data()
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    epoch, start = 0, 0
    saved_monitor: dict[str, Any] | None = None

    def save(monitor: TrainingMonitor, epoch: int, batch: int) -> None:
        progress = monitor.state_dict()  # first: it flushes, so that run.global_step is current
        manager.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "rng": capture_rng_state(), "epoch": epoch, "batch": batch,
                      "monitor": progress}, step=run.global_step)

    state = manager.load_latest()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_state(state["rng"])
        epoch, start, saved_monitor = state["epoch"], state["batch"], state["monitor"]
    else:
        run.restore_step(0, epoch=0)  # no checkpoint: training (and its record) starts again
    while epoch < EPOCHS:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(100 + epoch))
        batches = list(order.split(8))
        if saved_monitor is not None and start == 0:  # between passes: the step and the
            run.restore_step(saved_monitor["step"], epoch=saved_monitor["epoch"])  # epochs
        monitor = TrainingMonitor(range(start, len(batches)), run=run, disable=True,
                                  system=False, health=False, mininterval=0.1)
        if saved_monitor is not None and start > 0:  # the step, epochs ended, the pass's means
            monitor.load_state_dict(saved_monitor)
        saved_monitor = None
        for i in monitor:
            idx = batches[i]
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.log({"loss": loss})
            if (i + 1) % 7 == 0 and i + 1 < len(batches):
                save(monitor, epoch, i + 1)
        epoch, start = epoch + 1, 0
        save(monitor, epoch, 0)  # after the pass: its summary is in the run
    torch.save(model.state_dict(), out)
    run.close("finished")


def train_keras(root: Path, name: str, out: Path, switch: KillSwitch) -> None:
    import keras
    import numpy as np

    from loopwise.keras import LoopwiseCallback

    class StepPoint(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            switch.reached("step")

    keras.utils.set_random_seed(1234)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(240, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    callback = LoopwiseCallback(root=root, name=name, checkpoint_dir=root / f"{name}-ckpt",
                                resume=True, progress=False, system=False, health=False,
                                flush_interval=0.2)
    net.fit(x, y, batch_size=12, epochs=EPOCHS, shuffle=True, validation_data=(x[:40], y[:40]),
            verbose=0, callbacks=[callback, StepPoint()])
    np.savez(out, *[np.asarray(v) for v in net.get_weights()])


def main(argv: list[str]) -> None:
    entry, root, name, out = argv[0], Path(argv[1]), argv[2], Path(argv[3])
    options = dict(zip(argv[4::2], argv[5::2]))
    switch = KillSwitch(options.get("--kill"), options.get("--trace"))
    install(switch)
    if entry != "keras":
        import torch

        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(
            lambda *_: switch.reached("step"))
    trainers = {"fit": train_fit, "workflow": train_workflow, "monitor": train_monitor,
                "keras": train_keras}
    if entry == "exporters":
        train_monitor(root, name, out, switch, exporters=True)
    else:
        trainers[entry](root, name, out, switch)
    if "--census" in options:
        Path(options["--census"]).write_text(json.dumps(dict(switch.counts)))


if __name__ == "__main__":
    main(sys.argv[1:])
