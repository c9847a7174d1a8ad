"""LearningRateMonitor: one scalar per param group at each epoch start, kept across resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from loopwise.record import Run, RunReader
from loopwise.train.callbacks import LearningRateMonitor, LoopState


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
    assert list(reader.series("lr/group1").steps) == [0, 10]
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
