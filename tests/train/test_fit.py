"""fit end to end: files, record, best weights, Ctrl-C (SIGINT on a subprocess), resume, skip,
failure, early stopping, the non-finite stop, and argument errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.record import Run, RunReader
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit
from loopwise.train.step.nonfinite import NonFiniteLossError
from loopwise.train.step.oom import OutOfMemoryStop

QUIET: dict[str, Any] = {"plots": False, "progress": False, "system": False}
CHILD = Path(__file__).with_name("sigint_child.py")


def data(rows: int = 64, classes: int = 0) -> tuple[DataLoader[Any], DataLoader[Any]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 4, generator=g)
    y = (x[:, 0] > 0).long() if classes else x.sum(dim=1, keepdim=True)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                       generator=torch.Generator().manual_seed(1))
    return train, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16)


def config(**kw: Any) -> TrainingConfig:
    base = {"epochs": 3, "patience": 0, "lr_patience": 0, "device": "cpu",
            "learning_rate": 0.01, "model_name": "m"}
    return TrainingConfig(**{**base, **kw})


def test_fit_writes_the_reference_files_and_the_record(tmp_path: Path) -> None:
    train, val = data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    result = fit(model, train, loss_fn=torch.nn.MSELoss(), val_loader=val, test_loader=val,
                 config=config(epochs=4, checkpoint_every=2, keep_checkpoints=1, grad_clip=1.0),
                 root=tmp_path,
                 name="exp", plots=True, progress=False, system=False)
    folder = tmp_path / "exp"
    assert result.status == "finished" and result.run_path == folder and result.epochs == 4
    names = {p.name for p in folder.iterdir()}
    assert {"m_best_model.pth", "m_config.json", "m_training.log", "m_loss_analysis.png",
            "m_predictions.png", "m_results.json", "m_checkpoint_4.pth"} <= names
    assert "m_checkpoint_2.pth" not in names  # rotated out with the manager's copy
    assert all((folder / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
               for f in ("m_loss_analysis.png", "m_predictions.png"))
    assert TrainingConfig.load(folder / "m_config.json") == config(
        epochs=4, checkpoint_every=2, keep_checkpoints=1, grad_clip=1.0)
    assert len(result.train_losses) == len(result.val_losses) == 4
    assert result.best_value == min(result.val_losses)
    assert result.best_epoch == result.val_losses.index(min(result.val_losses)) + 1
    best = torch.load(folder / "m_best_model.pth", weights_only=True)
    for key, value in model.state_dict().items():  # the returned model holds the best weights
        assert torch.equal(best[key], value)
    assert result.test_loss == pytest.approx(result.best_value)  # test set == val set here
    reader = RunReader(folder)
    assert reader.info["status"] == "finished"
    assert {"loss", "grad_norm", "epoch/loss",
            "epoch/val_loss", "epoch/lr", "test/loss"} <= set(reader.keys())
    assert len(reader.series("loss")) == 4 * 4  # every step's own loss
    kinds = [e.kind for e in reader.events()]
    assert "best_model" in kinds and "epoch_end" in kinds and "test" in kinds
    saved = json.loads((folder / "m_results.json").read_text())
    assert saved["status"] == "finished" and saved["train_losses"] == result.train_losses
    log = (folder / "m_training.log").read_text()
    assert " - INFO - epoch 4/4: loss=" in log


def test_classification_records_accuracy(tmp_path: Path) -> None:
    train, val = data(classes=2)
    result = fit(torch.nn.Linear(4, 2), train, loss_fn=torch.nn.CrossEntropyLoss(),
                 val_loader=val, config=config(epochs=2), root=tmp_path, **QUIET)
    assert 0.0 <= result.history[-1]["val_accuracy"] <= 1.0
    assert "accuracy" in result.history[-1]
    assert "epoch/val_accuracy" in RunReader(result.run_path).keys()


def _child(tmp_path: Path, name: str, at: int, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), str(tmp_path), name, str(at),
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_sigint_saves_a_checkpoint_marks_interrupted_reraises_and_resumes_exactly(
        tmp_path: Path) -> None:
    reference = _child(tmp_path, "ref", -1, tmp_path / "ref.pt")
    out, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err
    proc = _child(tmp_path, "cut", 17, tmp_path / "cut.pt")
    marker = tmp_path / "cut.marker"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never reached the marked step"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # the child saw KeyboardInterrupt (not sys.exit)
    assert "KeyboardInterrupt: interrupted by Ctrl-C in epoch 2 after" in out
    folder = tmp_path / "cut"
    reader = RunReader(folder)
    assert reader.info["status"] == "interrupted"
    event = reader.events(kind="interrupted")[0]
    assert event.data is not None and event.data["epoch"] == 2
    checks = CheckpointManager(folder / "checkpoints").verify()
    assert checks and all(c.ok for c in checks)  # written atomically, hash verified
    assert not list(folder.rglob("*.tmp"))
    assert not (tmp_path / "cut.pt").exists()  # training did not go on to the end
    resumed = _child(tmp_path, "cut", -1, tmp_path / "cut.pt")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "status=finished epochs=3" in out
    reader = RunReader(folder)
    assert reader.info["status"] == "finished"
    assert reader.events(kind="fit_resumed")
    final, expected = torch.load(tmp_path / "cut.pt"), torch.load(tmp_path / "ref.pt")
    for key in expected:  # bit-identical to the run that was never interrupted
        assert torch.equal(final[key], expected[key]), key


def test_same_name_and_parameters_is_skipped_different_is_refused_force_redoes(
        tmp_path: Path) -> None:
    train, val = data()
    first = fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), val_loader=val,
                config=config(), root=tmp_path, name="same", **QUIET)
    fresh = torch.nn.Linear(4, 1)
    again = fit(fresh, train, loss_fn=torch.nn.MSELoss(), val_loader=val, config=config(),
                root=tmp_path, name="same", **QUIET)
    assert again.status == "skipped" and again.val_losses == first.val_losses
    assert again.best_epoch == first.best_epoch
    for p, q in zip(fresh.parameters(), first.model.parameters(), strict=True):
        assert torch.equal(p, q)  # the best weights were loaded into the new model
    with pytest.raises(ValueError, match=r"the parameters of run .*same differ from the ones "
                                         r"saved in .*config.json:\n  epochs: 3 \(saved\) -> 4 "
                                         r"\(now\)\npass force=True"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), val_loader=val,
            config=config(epochs=4), root=tmp_path, name="same", **QUIET)
    redone = fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), val_loader=val,
                 config=config(epochs=4), root=tmp_path, name="same", force=True, **QUIET)
    assert redone.status == "finished" and redone.epochs == 4


def test_an_exception_marks_the_run_failed_with_the_traceback(tmp_path: Path) -> None:
    train, _ = data()
    calls = {"n": 0}

    def bad_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("loss exploded on purpose")
        return torch.nn.functional.mse_loss(out, y)

    with pytest.raises(RuntimeError, match="loss exploded on purpose"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=bad_loss, config=config(), root=tmp_path,
            name="boom", **QUIET)
    reader = RunReader(tmp_path / "boom")
    assert reader.info["status"] == "failed"
    assert "loss exploded on purpose" in reader.info["error"]
    assert "Traceback" in reader.info["error"]
    assert "training failed" in (tmp_path / "boom" / "m_training.log").read_text()


def test_nonfinite_losses_in_a_row_stop_training_with_a_clear_message(tmp_path: Path) -> None:
    train, _ = data()
    with pytest.raises(NonFiniteLossError, match="NaN or infinite for 2 steps in a row"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=lambda o, y: (o - y).mean() * float("nan"),
            config=config(max_nonfinite=2), root=tmp_path, name="nan", **QUIET)
    reader = RunReader(tmp_path / "nan")
    assert reader.info["status"] == "failed"
    assert len(reader.events(kind="nonfinite_loss")) == 2


class AlwaysOOM(torch.nn.Module):
    """A CPU model whose forward fails as a GPU out of memory would, on every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")


@pytest.mark.parametrize(("limit", "message"), [
    (3, r"out of memory on 3 batches in a row, steps 0 to 2, even split in halves: training "
        r"stopped. Lower batch_size \(the last batch had 16 rows\) or the model's memory use; "
        r"max_oom_skips \(now 3\) sets how many"),
    (50, r"out of memory on every batch of the epoch \(4\), steps 0 to 3, even split in "
         r"halves: training stopped"),
])
def test_out_of_memory_on_every_batch_stops_with_a_clear_error(tmp_path: Path, limit: int,
                                                               message: str) -> None:
    train, _ = data()  # 4 batches of 16 rows
    with pytest.raises(OutOfMemoryStop, match=message):
        fit(AlwaysOOM(), train, loss_fn=torch.nn.MSELoss(),
            config=config(max_oom_skips=limit), root=tmp_path, name="oom", **QUIET)
    reader = RunReader(tmp_path / "oom")
    assert reader.info["status"] == "failed"
    assert "OutOfMemoryStop: out of memory on" in reader.info["error"]
    assert "epoch/train_loss" not in reader.keys() and "epoch/loss" not in reader.keys()
    assert not (tmp_path / "oom" / "m_results.json").exists()  # no result passes for success


def test_early_stopping_from_the_config_stops_with_a_reason(tmp_path: Path) -> None:
    train, val = data()
    result = fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), val_loader=val,
                 config=config(epochs=30, patience=1, learning_rate=0.5), root=tmp_path,
                 **QUIET)
    assert result.status == "stopped" and result.epochs < 30
    assert result.stop_reason and "val_loss" in result.stop_reason
    assert RunReader(result.run_path).events(kind="early_stop")


def test_a_given_run_is_used_and_left_open(tmp_path: Path) -> None:
    train, _ = data()
    run = Run.create(tmp_path, "mine")
    run.advance(100)  # e.g. a warm-up loop recorded 100 steps before
    result = fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(),
                 run=run, **QUIET)
    assert result.run_path == tmp_path / "mine" and not run.closed
    run.log_event("after", "the owner can still write")
    run.close()
    reader = RunReader(tmp_path / "mine")
    assert reader.config()["epochs"] == 3
    assert list(reader.series("loss").steps) == list(range(101, 113))
    assert list(reader.series("loss").steps)[-1] == 112  # the session counts on too


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"model": "net"}, TypeError, "model must be a torch.nn.Module, got str"),
    ({"loss_fn": 3}, TypeError, r"loss_fn must be callable as loss_fn\(outputs, targets\)"),
    ({"train_loader": []}, ValueError, r"train_loader is empty \(len 0\)"),
    ({"train_loader": iter([1])}, TypeError, r"train_loader needs a len\(\)"),
    ({"config": {"epochs": 3}}, TypeError, "config must be a loopwise.TrainingConfig"),
    ({"optimizer": "adam"}, TypeError, "optimizer must be a torch.optim.Optimizer"),
    ({"name": "a/b"}, ValueError, "invalid run name 'a/b'"),
    ({"allow_reshard": 1}, TypeError, "allow_reshard must be True or False, got 1"),
    ({"config": TrainingConfig(device="cuda")}, ValueError,
     "device 'cuda' was asked for but CUDA is not available"),
])
def test_bad_arguments_are_clear_errors(tmp_path: Path, kwargs: dict[str, Any],
                                        error: type[Exception], message: str) -> None:
    train, _ = data()
    args: dict[str, Any] = {"model": torch.nn.Linear(4, 1), "train_loader": train,
                            "loss_fn": torch.nn.MSELoss(), "config": config(), "root": tmp_path,
                            **QUIET, **kwargs}
    with pytest.raises(error, match=message):
        fit(args.pop("model"), args.pop("train_loader"), **args)
    assert not any(tmp_path.iterdir()) or kwargs.get("name")  # refused before making a run


def test_run_and_name_together_are_refused(tmp_path: Path) -> None:
    train, _ = data()
    with Run.create(tmp_path, "r") as run, pytest.raises(ValueError, match="with run= given"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), run=run, name="x",
            **QUIET)


def test_ctrl_c_in_validation_then_resume_in_process(tmp_path: Path) -> None:
    train, val = data()
    model = torch.nn.Linear(4, 1)
    sent = {"done": False}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and not sent["done"]:  # validation of epoch 1
            sent["done"] = True
            os.kill(os.getpid(), signal.SIGINT)
        return torch.nn.functional.mse_loss(out, y)

    with pytest.raises(KeyboardInterrupt, match="interrupted by Ctrl-C in epoch 1 after 4 "
                                                "batches; checkpoint saved"):
        fit(model, train, loss_fn=loss_fn, val_loader=val, config=config(), root=tmp_path,
            name="val", **QUIET)
    assert RunReader(tmp_path / "val").info["status"] == "interrupted"
    result = fit(model, train, loss_fn=loss_fn, val_loader=val, config=config(),
                 root=tmp_path, name="val", **QUIET)
    assert result.status == "finished" and len(result.val_losses) == 3
    reader = RunReader(tmp_path / "val")
    series = reader.series("epoch/loss")
    # epoch 1's training summary was recorded before the interrupt, and not again on resume;
    # each summary sits at the global step where its epoch ended (4 batches an epoch)
    assert list(series.steps) == [4, 8, 12] and list(series.epochs) == [1, 2, 3]
    assert list(reader.series("epoch/val_loss").epochs) == [1, 2, 3]
    assert list(reader.series("loss").steps) == list(range(1, 13))


def test_ctrl_c_between_epochs_is_honoured_not_swallowed(tmp_path: Path) -> None:
    from loopwise.train.callbacks import Callback, LoopState

    class CtrlCAtEnd(Callback):
        def __init__(self, active: bool) -> None:
            self.active = active

        def on_epoch_end(self, state: LoopState) -> None:
            if self.active and state.epoch == 3:  # the last epoch: no step checks the flag after
                os.kill(os.getpid(), signal.SIGINT)

    train, _ = data()
    with pytest.raises(KeyboardInterrupt, match="interrupted by Ctrl-C after epoch 3; "
                                                "checkpoint saved"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(),
            root=tmp_path, name="end", callbacks=[CtrlCAtEnd(True)], **QUIET)
    assert RunReader(tmp_path / "end").info["status"] == "interrupted"
    result = fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(),
                 root=tmp_path, name="end", callbacks=[CtrlCAtEnd(False)], **QUIET)
    assert result.status == "finished" and result.epochs == 3 and len(result.train_losses) == 3


def test_system_interval_is_set_through_fit_and_a_started_sampler_is_kept(
        tmp_path: Path) -> None:
    from loopwise.watch.system import SystemMonitor
    from loopwise.watch.system_run import ensure_system_monitor

    train, _ = data()
    quiet = {"plots": False, "progress": False}
    with Run.create(tmp_path, "given") as run:
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(epochs=1),
            run=run, system=0.25, **quiet)
        sampler = run.find_helper(SystemMonitor)
        assert sampler is not None and sampler.interval == 0.25
    with Run.create(tmp_path, "started") as run:
        mine = ensure_system_monitor(run, interval=9.0)
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(epochs=1),
            run=run, system=True, **quiet)
        assert run.find_helper(SystemMonitor) is mine and mine.interval == 9.0
    with pytest.raises(ValueError, match=r"system must be True .* got 0"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), config=config(),
            root=tmp_path, name="bad", system=0, **quiet)
    assert not (tmp_path / "bad").exists()  # refused before anything was made


def test_a_failed_fit_writes_its_report(tmp_path: Path) -> None:
    train, val = data()
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] > 6:  # in epoch 2
            raise RuntimeError("boom in epoch 2")
        return torch.nn.functional.mse_loss(out, y)

    with pytest.raises(RuntimeError, match="boom in epoch 2"):
        fit(torch.nn.Linear(4, 1), train, loss_fn=loss_fn, val_loader=val, config=config(),
            root=tmp_path, name="exp", **QUIET)
    folder = tmp_path / "exp"
    assert RunReader(folder).status == "failed"
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "failed" in html and "boom in epoch 2" in html
