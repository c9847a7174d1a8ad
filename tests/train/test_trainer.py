"""Trainer: the abstract interface, its defaults, and track() outside a Workflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import loopwise
from loopwise.record import RunReader
from loopwise.train.workflow.trainer import Trainer


class Minimal(Trainer):
    def __init__(self) -> None:
        self.args = {"lr": 0.1}

    def setup(self) -> None:
        self.model = torch.nn.Linear(2, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.args["lr"])

    def train_loop(self) -> dict[str, float]:
        return {"train_loss": 0.0}

    def evaluate(self) -> dict[str, float]:
        return {"val_loss": 0.0}


def test_public_name_and_abstract_methods() -> None:
    assert loopwise.Trainer is Trainer
    with pytest.raises(TypeError, match="abstract"):
        Trainer()  # type: ignore[abstract]

    class NoEvaluate(Trainer):
        def setup(self) -> None: ...

        def train_loop(self) -> dict[str, float]:
            return {}

    with pytest.raises(TypeError, match="evaluate"):
        NoEvaluate()  # type: ignore[abstract]


def test_defaults_return_the_conventional_attributes() -> None:
    trainer = Minimal()
    assert trainer.get_model() is None and trainer.get_optimizer() is None
    assert trainer.get_scheduler() is None and trainer.get_scaler() is None
    trainer.setup()
    assert trainer.get_model() is trainer.model
    assert trainer.get_optimizer() is trainer.optimizer


def test_track_outside_a_workflow_is_a_plain_monitor(tmp_path: Path) -> None:
    trainer = Minimal()
    monitor = trainer.track([1, 2, 3], "steps", root=tmp_path, name="solo", disable=True,
                            system=False)
    assert [x for x in monitor if monitor.log({"x": float(x)}) is None] == [1, 2, 3]
    assert isinstance(monitor, loopwise.TrainingMonitor)
    assert list(RunReader(tmp_path / "solo").series("x").values) == [1.0, 2.0, 3.0]
