"""LearningRateMonitor: one scalar per param group at each epoch start, kept across resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from loopwise.cli import main
from loopwise.record import Run, RunReader
from loopwise.train.callbacks import LearningRateMonitor, LoopState
from loopwise.train.workflow.runner import Workflow
from loopwise.train.workflow.trainer import Trainer


def test_records_each_group_into_the_run(tmp_path: Path) -> None:
    w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w], "lr": 0.1, "name": "body"},
                           {"params": [b], "lr": 0.01}], lr=0.1)
    cb = LearningRateMonitor()
    with Run.create(root=tmp_path, name="r") as run:
        for epoch, step in ((1, 0), (2, 10)):
            cb.on_epoch_begin(LoopState(epoch=epoch, step=step, optimizer=opt, run=run))
            for group in opt.param_groups:
                group["lr"] /= 10
    reader = RunReader(tmp_path / "r")
    assert reader.series("lr/body").values == pytest.approx([0.1, 0.01])
    assert list(reader.series("lr/group1").steps) == [1, 10]  # before any step: epoch 1's
    assert cb.history[1] == (2, {"lr/body": pytest.approx(0.01),
                                 "lr/group1": pytest.approx(0.001)})


def test_single_group_is_plain_lr_and_history_survives_resume() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    cb = LearningRateMonitor()
    cb.on_epoch_begin(LoopState(epoch=1, optimizer=opt))
    again = LearningRateMonitor()
    again.load_state_dict(cb.state_dict())
    assert again.history == [(1, {"lr": 0.5})]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="prefix must be a non-empty string"):
        LearningRateMonitor(prefix="")
    with pytest.raises(ValueError, match="needs the optimizer"):
        LearningRateMonitor().on_epoch_begin(LoopState(epoch=1))
    with pytest.raises(KeyError, match="LearningRateMonitor state is missing 'history'"):
        LearningRateMonitor().load_state_dict({})


class Seed002Trainer(Trainer):
    """A train_loop that never calls track(): the run's global step stays 0."""

    def __init__(self) -> None:
        self.args = {"lr": 0.1}

    def setup(self) -> None:
        self.model = torch.nn.Linear(2, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.5)

    def train_loop(self) -> dict[str, float]:
        loss = self.model(torch.ones(4, 2)).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        return {"val_loss": 1.0}


def test_every_epoch_keeps_its_lr_when_train_loop_never_tracks(tmp_path: Path) -> None:
    result = Workflow(Seed002Trainer(), tmp_path, 3, "sched", callbacks=[LearningRateMonitor()],
                      system=False, health=False).run()
    lr = RunReader(result.path).series("lr")
    assert list(lr.values) == pytest.approx([0.1, 0.05, 0.025])
    assert list(lr.steps) == [1, 2, 3] and list(lr.epochs) == [1, 2, 3]
    out = tmp_path / "sched.csv"
    assert main(["export", str(result.path), str(out)]) == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr"]) for r in rows if r["lr"]] == pytest.approx([0.1, 0.05, 0.025])
    assert [float(r["epoch/val_loss"]) for r in rows if r["epoch/val_loss"]] == [1.0] * 3


def test_a_loop_that_counts_steps_records_at_the_global_step(tmp_path: Path) -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    cb = LearningRateMonitor()
    with Run.create(root=tmp_path, name="steps") as run:
        for epoch in (1, 2, 3):
            cb.on_epoch_begin(LoopState(epoch=epoch, step=run.global_step, optimizer=opt,
                                        run=run))
            run.advance(20)
            opt.param_groups[0]["lr"] /= 2
    lr = RunReader(tmp_path / "steps").series("lr")
    assert list(lr.steps) == [1, 20, 40]
    assert list(lr.values) == [0.5, 0.25, 0.125]
