"""loopwise.lightning with a real PyTorch Lightning ``Trainer.fit`` (CPU, a tiny MLP).

The trainings run in child processes (``_lightning_child.py``): an uninterrupted fit (then one
that raises and one stopped by Ctrl-C), a fit SIGKILLed at step 10, and its resume from the
step-8 checkpoint. The record is read back here with RunReader, as a user would.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from loopwise.record import RunReader

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lightning") is None,
                                reason="needs lightning: pip install 'loopwise[lightning]'")

HERE = Path(__file__).parent
CHILD = HERE / "_lightning_child.py"
SRC = str(HERE.parents[1] / "src")
EPOCHS, STEPS = 3, 6
SHARED = {"loss", "lr", "epoch", "epoch/loss", "epoch/val_loss", "epoch/lr", "epoch/seconds"}


def _start(work: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE)]),
           "MPLCONFIGDIR": str(work / ".mpl"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), mode, str(work)], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("lightning")
    started = {mode: _start(work, mode) for mode in ("full", "kill")}
    out = {mode: proc.communicate(timeout=280) for mode, proc in started.items()}
    codes = {mode: proc.returncode for mode, proc in started.items()}
    killed_status = RunReader(work / "runs" / "lit-kill").info["status"]
    killed_steps = list(RunReader(work / "runs" / "lit-kill").series("loss").steps)
    resume = _start(work, "resume")
    out["resume"] = resume.communicate(timeout=280)
    codes["resume"] = resume.returncode
    for mode in ("full", "resume"):
        assert codes[mode] == 0, out[mode][1][-3000:]
    results = {m: json.loads((work / f"result-{m}.json").read_text()) for m in ("full", "resume")}
    return {"work": work, "out": out, "codes": codes, "results": results,
            "killed_status": killed_status, "killed_steps": killed_steps}


def test_fit_records_every_step_and_epoch_under_the_record_names(trained: dict[str, Any]) -> None:
    reader = RunReader(trained["results"]["full"]["run"])
    assert reader.info["status"] == "finished"
    assert SHARED | {"mae", "epoch/mae"} <= set(reader.keys())
    assert list(reader.series("loss").steps) == list(range(1, EPOCHS * STEPS + 1))
    assert list(reader.series("mae").steps) == list(range(1, EPOCHS * STEPS + 1))
    ends = [STEPS * (e + 1) for e in range(EPOCHS)]
    assert list(reader.series("epoch").steps) == ends
    assert list(reader.series("epoch").values) == [1.0, 2.0, 3.0]
    assert list(reader.series("epoch/val_loss").steps) == ends
    assert list(reader.series("lr").steps) == [1, 7, 13]  # the first step of every epoch
    loss = reader.series("loss").values
    assert reader.series("epoch/loss").values[0] == pytest.approx(sum(loss[:STEPS]) / STEPS)
    config = reader.config()
    assert config["lr"] == 0.05 and config["max_epochs"] == EPOCHS
    assert config["total_params"] == 8 * 16 + 16 + 16 + 1
    saved = [e for e in reader.events() if e.kind == "checkpoint_saved"]
    assert [e.data["step"] for e in saved] == [4, 8, 12, 16]
    assert saved[0].data["file"].endswith("ck-step=4.ckpt")
    assert {name for _, name, _ in reader.system()} >= {"cpu_pct", "ram_pct", "steps_per_s"}


def test_one_bar_loopwise_s_in_place_of_lightning_s(trained: dict[str, Any]) -> None:
    stdout, stderr = trained["out"]["full"]
    for epoch in range(1, EPOCHS + 1):
        assert f"Epoch {epoch}/{EPOCHS} (Training)" in stderr
        assert f"Epoch {epoch}/{EPOCHS} Summary:" in stderr
    assert f"{STEPS}/{STEPS}" in stderr and "loss=" in stderr and "batch/s" in stderr
    assert "Validation - Loss:" in stderr
    both = stdout + stderr
    assert "Epoch 0:" not in both and "it/s]" not in both  # Lightning's TQDM bar


def test_sigkill_reads_crashed_and_the_resume_has_every_step_once(
        trained: dict[str, Any]) -> None:
    assert trained["codes"]["kill"] == -signal.SIGKILL
    assert trained["killed_status"] == "crashed"
    assert trained["killed_steps"] == list(range(1, 11))  # past the step-8 checkpoint
    reader = RunReader(trained["results"]["resume"]["run"])
    assert Path(trained["results"]["resume"]["run"]).name == "lit-kill"
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, EPOCHS * STEPS + 1))
    assert list(reader.series("epoch").values) == [1.0, 2.0, 3.0]
    assert list(reader.series("epoch/val_loss").steps) == [6, 12, 18]
    loaded = next(e for e in reader.events() if e.kind == "checkpoint_loaded")
    assert loaded.data["step"] == 8 and loaded.data["file"].endswith("ck-step=8.ckpt")
    assert "resumed" in [e.kind for e in reader.events()]


def test_an_exception_reads_failed_and_ctrl_c_interrupted_at_once(
        trained: dict[str, Any]) -> None:
    result = trained["results"]["full"]
    assert result["exception"]["raised"] == "RuntimeError"
    assert result["exception"]["status"] == "failed"
    assert "exception" in result["exception"]["events"]
    assert result["ctrl-c"]["status"] == "interrupted"
    assert "interrupted" in result["ctrl-c"]["events"]


def test_exporters_receive_the_record(trained: dict[str, Any]) -> None:
    result = trained["results"]["full"]
    assert set(result["keys"]) >= SHARED and "system:cpu_pct" in result["keys"]
    assert "checkpoint_saved" in result["events"] and "epoch_end" in result["events"]
    assert result["config"]["max_epochs"] == EPOCHS
    assert result["closed"] == "finished"


def test_the_record_lines_up_with_a_fit_run_in_compare(trained: dict[str, Any],
                                                      tmp_path: Path) -> None:
    import torch

    from loopwise import TrainingConfig, fit
    from loopwise.cli import main

    torch.manual_seed(0)
    x = torch.randn(48, 8)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    result = fit(net, loader, val_loader=loader, loss_fn=torch.nn.functional.mse_loss,
                 config=TrainingConfig(epochs=EPOCHS, learning_rate=0.05), root=tmp_path,
                 name="fit", progress=False, plots=False, report=False, system=False)
    fit_keys = set(RunReader(tmp_path / "fit").keys())
    assert fit_keys >= SHARED, result
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["compare", str(tmp_path / "fit"), trained["results"]["full"]["run"]]) == 0
    metrics = out.getvalue().split("\nconfig:")[0]  # the metrics table, not the config diff
    rows = {line.split()[0]: line for line in metrics.splitlines() if line.strip()}
    for key in SHARED - {"epoch"}:
        assert key in rows and "-" not in rows[key].split()[1:2], out.getvalue()


def test_split_metrics_names_lightning_s_keys_as_the_record_does() -> None:
    from loopwise.lightning.logger import split_metrics

    step, epoch, test = split_metrics({"loss_step": 1.0, "acc": 2.0, "loss_epoch": 3.0,
                                       "val_loss": 4.0, "val/acc": 5.0, "test_loss": 6.0,
                                       "epoch": 0.0})
    assert step == {"loss": 1.0, "acc": 2.0}
    assert epoch == {"loss": 3.0, "val_loss": 4.0, "val_acc": 5.0}
    assert test == {"loss": 6.0}
    assert split_metrics({"acc": 1.0}, validating=True)[1] == {"val_acc": 1.0}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flush_interval": 0}, "flush_interval must be a finite number > 0 (seconds), got 0"),
    ({"run": "runs/x"}, "run must be a loopwise Run, got str"),
    ({"exporters": [1]}, "exporters must be loopwise Recorders (e.g. from loopwise.export), "
                         "got int"),
    ({"config": [1]}, "config must be a dict, got list"),
    ({"name": 3}, "name must be a string (the run's folder name), got int"),
])
def test_bad_logger_arguments_are_refused_with_what_to_do(kwargs: dict[str, Any],
                                                          message: str) -> None:
    from loopwise.lightning import LoopwiseLogger

    with pytest.raises((TypeError, ValueError)) as info:
        LoopwiseLogger(**kwargs)
    assert str(info.value) == message


def test_the_callback_without_the_logger_says_what_to_pass(tmp_path: Path) -> None:
    import lightning.pytorch as L
    import torch

    from loopwise.lightning import LoopwiseCallback

    with pytest.raises(TypeError, match="progress must be True or False, got 1"):
        LoopwiseCallback(progress=1)  # type: ignore[arg-type]
    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.w(batch[0]).sum()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    net = Net()
    trainer = L.Trainer(max_epochs=1, logger=False, callbacks=[LoopwiseCallback()],
                        default_root_dir=tmp_path, enable_checkpointing=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)))
    with pytest.raises(ValueError, match=r"pass Trainer\(logger=LoopwiseLogger\(\.\.\.\), "):
        trainer.fit(net, loader)


@pytest.mark.skipif(importlib.util.find_spec("pytorch_lightning") is None,
                    reason="needs pytorch_lightning")
def test_pytorch_lightning_imports_work_too(tmp_path: Path) -> None:
    import pytorch_lightning as pl
    import torch

    from loopwise.lightning import LoopwiseCallback, LoopwiseLogger

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.w(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    err = io.StringIO()
    logger = LoopwiseLogger(root=tmp_path, name="pl")
    trainer = pl.Trainer(max_epochs=2, logger=logger, callbacks=[LoopwiseCallback(file=err)],
                         default_root_dir=tmp_path, enable_checkpointing=False,
                         enable_model_summary=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(6, 2)),
                                         batch_size=2)
    assert isinstance(trainer.progress_bar_callback, LoopwiseCallback)  # no TQDM bar added
    trainer.fit(Net(), loader)
    reader = RunReader(tmp_path / "pl")
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == [1, 2, 3, 4, 5, 6]
    assert list(reader.series("epoch").steps) == [3, 6]
    assert "Epoch 2/2 (Training)" in err.getvalue()


def test_the_logger_alone_records_what_lightning_logs(tmp_path: Path) -> None:
    import lightning.pytorch as L
    import torch

    from loopwise.lightning import LoopwiseLogger

    class Net(L.LightningModule):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = self.w(batch[0]).pow(2).mean()
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", self.w(batch[0]).pow(2).mean())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(6, 2)),
                                         batch_size=2)
    logger = LoopwiseLogger(root=tmp_path, name="alone")
    trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1,
                        enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(Net(), loader, loader)
    reader = RunReader(tmp_path / "alone")
    assert reader.info["status"] == "finished"
    assert list(reader.series("train_loss").steps) == [1, 2, 3, 4, 5, 6]  # Lightning's 0..5
    assert list(reader.series("epoch/train_loss").steps) == [3, 6]
    assert list(reader.series("epoch/val_loss").steps) == [3, 6]
    assert list(reader.series("epoch").values) == [1.0, 2.0]
    assert reader.config() == {"lr": 0.1}


@pytest.mark.parametrize(("bad", "callback"), [("nan", True), ("inf", True), ("nan", False)])
def test_a_loss_gone_nonfinite_fires_the_health_event_at_its_step(tmp_path: Path, bad: str,
                                                                  callback: bool) -> None:
    """The health detectors behind a real Trainer.fit, with the callback and the logger (the
    loss ``training_step`` returns) or the logger alone (the loss it logs): the loss NaN (or
    infinite) at step 4 is one ``health.nonfinite`` finding naming the key and the step."""
    import math

    import lightning.pytorch as L
    import torch

    from loopwise.lightning import LoopwiseCallback, LoopwiseLogger

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = self.w(batch[0]).pow(2).mean()
            loss = loss * float(bad) if self.global_step + 1 == 4 else loss
            if not callback:
                self.log("train_loss", loss, on_step=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(12, 2)),
                                         batch_size=2)
    logger = LoopwiseLogger(root=tmp_path, name="bad")
    trainer = L.Trainer(max_epochs=1, logger=logger, log_every_n_steps=1,
                        callbacks=[LoopwiseCallback(file=io.StringIO())] if callback else [],
                        enable_progress_bar=callback, enable_checkpointing=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(Net(), loader)
    reader = RunReader(tmp_path / "bad")
    key = "loss" if callback else "train_loss"
    series = reader.series(key)
    assert list(series.steps)[3] == 4 and not math.isfinite(series.values[3])
    found = [e for e in reader.events(kind="health.nonfinite")
             if e.data is not None and e.data.get("key") == key]
    assert [e.data["step"] for e in found if e.data is not None] == [4], reader.events()
    assert f"{key} is {bad} at step 4" in found[0].message
