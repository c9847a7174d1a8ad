"""One record: the same training through TrainingMonitor, TrainingSession, fit and Workflow
gives the shared quantities the same series names and the same axes (docs/record.md)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise import TrainingConfig, TrainingMonitor, TrainingSession, Workflow, fit
from loopwise.record import RunReader
from loopwise.record.active import end_active_run
from loopwise.train.workflow.trainer import Trainer

EPOCHS, BATCHES = 2, 4
SHARED = {"loss", "lr", "epoch", "epoch/loss", "epoch/val_loss", "epoch/lr", "epoch/seconds"}


def _data() -> tuple[DataLoader[Any], DataLoader[Any]]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=g), torch.randn(32, 1, generator=g)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    val = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8)
    return train, val


def _setup() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.05)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: Any, y: Any) -> float:
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def _val(model: torch.nn.Module, x: Any, y: Any) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(x), y))


def with_monitor(root: Path) -> Path:
    model, opt = _setup()
    train, val = _data()
    for _ in range(EPOCHS):  # seed 000's loop: one monitor per epoch, one run
        monitor = TrainingMonitor(train, root=root, file=io.StringIO(), system=False)
        for x, y in monitor:
            monitor.log({"loss": _step(model, opt, x, y), "lr": opt.param_groups[0]["lr"]})
        check = TrainingMonitor(val, phase="val", file=io.StringIO(), system=False, root=root)
        for x, y in check:
            check.log({"loss": _val(model, x, y)})
    path = monitor.run.path  # type: ignore[union-attr]
    end_active_run()
    return path


def with_session(root: Path) -> Path:
    model, opt = _setup()
    train, val = _data()
    session = TrainingSession("M", EPOCHS, BATCHES, 2, root=root, system=False,
                              file=io.StringIO())
    session.start_training()
    for epoch in range(1, EPOCHS + 1):
        session.start_epoch(epoch)
        for i, (x, y) in enumerate(train, 1):
            loss = _step(model, opt, x, y)
            session.update_training_progress(i, loss, metrics={"lr": opt.param_groups[0]["lr"]})
        session.finish_training_epoch()
        session.start_validation()
        for i, (x, y) in enumerate(val, 1):
            session.update_validation_progress(i, _val(model, x, y))
        session.finish_validation_epoch()
    assert session.run is not None
    return session.run.path


def with_fit(root: Path) -> Path:
    model, opt = _setup()
    train, val = _data()
    result = fit(model, train, loss_fn=torch.nn.MSELoss(), optimizer=opt, val_loader=val,
                 config=TrainingConfig(epochs=EPOCHS), root=root, name="fit", plots=False,
                 progress=False, system=False)
    return result.run_path


class _Toy(Trainer):
    def __init__(self) -> None:
        super().__init__()
        self.args = {"lr": 0.05}

    def setup(self) -> None:
        self.model, self.optimizer = _setup()
        self.train_data, self.val_data = _data()

    def train_loop(self) -> dict[str, float]:
        losses = []
        monitor = self.track(self.train_data, "train", disable=True)
        for x, y in monitor:
            losses.append(_step(self.model, self.optimizer, x, y))
            monitor.log({"loss": losses[-1]})
        return {"loss": sum(losses) / len(losses)}

    def evaluate(self) -> dict[str, float]:
        return {"loss": sum(_val(self.model, x, y) for x, y in self.val_data) / 2}


def with_workflow(root: Path) -> Path:
    result = Workflow(_Toy(), root, EPOCHS, name="wf", system=False).run()
    return result.path


@pytest.mark.parametrize("entry", [with_monitor, with_session, with_fit, with_workflow],
                         ids=["TrainingMonitor", "TrainingSession", "fit", "Workflow"])
def test_the_shared_quantities_have_one_name_and_one_set_of_axes(entry: Any,
                                                                 tmp_path: Path) -> None:
    reader = RunReader(entry(tmp_path / "runs"))
    assert set(reader.keys()) >= SHARED, sorted(SHARED - set(reader.keys()))
    n = EPOCHS * BATCHES
    loss = reader.series("loss")  # every training step's own value, at the global step
    assert list(loss.steps) == list(range(1, n + 1))
    assert list(loss.epochs) == [e for e in range(1, EPOCHS + 1) for _ in range(BATCHES)]
    assert all(b >= a for a, b in zip(loss.times, loss.times[1:]))
    for key in ("epoch/loss", "epoch/val_loss", "epoch/lr", "epoch/seconds", "epoch"):
        s = reader.series(key)  # an epoch summary sits at the step where its epoch ended
        assert list(s.steps) == [BATCHES * e for e in range(1, EPOCHS + 1)], key
        assert list(s.epochs) == list(range(1, EPOCHS + 1)), key
    lr = reader.series("lr")
    assert {1, BATCHES + 1} <= set(lr.steps) and set(lr.values) == {0.05}
    assert list(reader.series("epoch/lr").values) == [0.05] * EPOCHS
    val = reader.series("epoch/val_loss").values
    assert all(0.0 < v < 10.0 for v in val)


def test_fit_and_workflow_end_by_writing_the_html_report(tmp_path: Path) -> None:
    for entry in (with_fit, with_workflow):
        path = entry(tmp_path / "runs")
        report = (path / "report.html").read_text(encoding="utf-8")
        assert "epoch/val_loss" in report and "<script" in report
    assert not (with_session(tmp_path / "other") / "report.html").exists()  # fit/Workflow only


def test_runs_from_two_entry_points_line_up_in_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from loopwise.export.tensorboard import TensorBoardExporter

    model, opt = _setup()
    train, val = _data()
    fit(model, train, loss_fn=torch.nn.MSELoss(), optimizer=opt, val_loader=val,
        config=TrainingConfig(epochs=EPOCHS), root=tmp_path / "runs", name="fit", plots=False,
        progress=False, system=False, exporters=[TensorBoardExporter(tmp_path / "tb" / "fit")])
    model, opt = _setup()
    mirror = TensorBoardExporter(tmp_path / "tb" / "monitor")  # attached once to the active run
    for _ in range(EPOCHS):
        monitor = TrainingMonitor(train, root=tmp_path / "runs", file=io.StringIO(), system=False,
                                  exporters=[mirror])
        for x, y in monitor:
            monitor.log({"loss": _step(model, opt, x, y), "lr": opt.param_groups[0]["lr"]})
        check = TrainingMonitor(val, phase="val", root=tmp_path / "runs", file=io.StringIO(),
                                system=False)
        for x, y in check:
            check.log({"loss": _val(model, x, y)})
    end_active_run()
    tags = {}
    for name in ("fit", "monitor"):
        acc = EventAccumulator(str(tmp_path / "tb" / name), size_guidance={"scalars": 0})
        acc.Reload()
        tags[name] = set(acc.Tags()["scalars"])
        steps = [e.step for e in acc.Scalars("epoch/val_loss")]
        assert steps == [BATCHES * e for e in range(1, EPOCHS + 1)], name
    shared = {"loss", "lr", "epoch/loss", "epoch/val_loss", "epoch/lr", "epoch/seconds"}
    assert shared <= tags["fit"] & tags["monitor"], (tags["fit"], tags["monitor"])
