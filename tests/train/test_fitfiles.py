"""The reference-named files of a fit and the periodic checkpoint rotation."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from loopwise.train.fit.files import FitFiles


def test_names_and_periodic_checkpoint_rotation(tmp_path: Path) -> None:
    files = FitFiles(tmp_path, "exp", keep=2)
    assert files.best_model.name == "exp_best_model.pth"
    assert files.checkpoint_path(7).name == "exp_checkpoint_7.pth"
    for epoch in (1, 2, 3):
        shown = files.save_checkpoint({"w": torch.full((2,), float(epoch))}, step=epoch * 10,
                                      epoch=epoch, periodic=True)
        assert shown == tmp_path / f"exp_checkpoint_{epoch}.pth"
    assert sorted(p.name for p in tmp_path.glob("exp_checkpoint_*.pth")) == [
        "exp_checkpoint_2.pth", "exp_checkpoint_3.pth"]  # the manager kept the last two
    payload = torch.load(tmp_path / "exp_checkpoint_3.pth", weights_only=True)
    assert payload["state"]["w"].tolist() == [3.0, 3.0]
    mid = files.save_checkpoint({"w": torch.zeros(1)}, step=35, epoch=3, periodic=False,
                                in_progress=4)
    assert mid.parent == tmp_path / "checkpoints"  # not given a reference name
    assert files.load_latest(torch.device("cpu"))["w"].tolist() == [0.0]  # type: ignore[index]
    files.close()


def test_best_model_and_results(tmp_path: Path) -> None:
    files = FitFiles(tmp_path, "exp", keep=1)
    model = torch.nn.Linear(2, 1)
    path = files.save_best_model(model)
    files.named.wait()  # written off the training thread (save_later): on disk after wait()
    assert set(torch.load(path, weights_only=True)) == {"weight", "bias"}
    out = files.write_results({"losses": [1.0, math.nan], "best": math.inf})
    assert out.read_text().replace(" ", "").replace("\n", "") == \
        '{"losses":[1.0,null],"best":null}'
    files.close()
