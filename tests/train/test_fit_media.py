"""fit and Workflow beyond scalars: weight and gradient histograms every N epochs
(``histogram_every``), and fit's end-of-training figures (predictions, losses, permutation
feature importance) as images and a text table in the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.callbacks import WeightHistograms
from loopwise.record import RunReader
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit
from loopwise.train.fit.importance import importance_table, permutation_importance
from loopwise.train.workflow.runner import Workflow

CFG: dict[str, Any] = {"epochs": 4, "patience": 0, "lr_patience": 0, "device": "cpu",
                       "learning_rate": 0.05, "model_name": "m", "checkpoint_every": 0}


def regression(rows: int = 256) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """y depends on x0 strongly, on x2 weakly, and not at all on x1 and x3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 4, generator=g)
    y = (3 * x[:, 0] + 0.5 * x[:, 2]).unsqueeze(1)
    train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(1))
    return train, DataLoader(TensorDataset(x[:128], y[:128]), batch_size=64)


def test_fit_records_histograms_every_n_epochs_and_its_figures(tmp_path: Path) -> None:
    train, val = regression()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    result = fit(model, train, loss_fn=torch.nn.MSELoss(), val_loader=val,
                 config=TrainingConfig(**CFG, histogram_every=2), root=tmp_path, name="exp",
                 plots=True, progress=False, system=False, report=False)
    reader = RunReader(result.run_path)
    names = reader.histogram_names()
    assert {"weights/0.weight", "grads/0.weight", "weights/2.bias", "grads/2.bias"} <= set(names)
    assert [p.step for p in reader.histograms("weights/0.weight")] == [16, 32]  # epochs 2, 4
    assert reader.histograms("grads/0.weight")[0].histogram.total == 32
    assert set(reader.image_names()) == {"losses", "predictions", "feature_importance"}
    assert all(reader.images(n)[0].step == 32 for n in reader.image_names())
    assert reader.images("predictions")[0].path.read_bytes() == (
        result.run_path / "m_predictions.png").read_bytes()
    (table,) = reader.texts("feature_importance")
    lines = table.text.splitlines()
    assert lines[0].split() == ["rank", "feature", "loss", "increase", "+-"]
    assert [line.split()[1] for line in lines[1:]][:2] == ["x0", "x2"]


def test_permutation_importance_ranks_the_feature_the_target_depends_on() -> None:
    _, val = regression()
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0, 0.5, 0.0]]))
        model.bias.zero_()
    found = permutation_importance(model, val, torch.nn.MSELoss(), device=torch.device("cpu"),
                                   names=["a", "b", "c", "d"])
    assert found is not None
    assert [i.feature for i in found][:2] == ["a", "c"]
    assert found[0].mean == pytest.approx(2 * 9, rel=0.3)  # shuffling: 2 var(3 x0)
    assert abs(found[-1].mean) < 1e-9  # b and d: unused
    assert importance_table(found).splitlines()[1].split()[:2] == ["1", "a"]
    images = DataLoader(TensorDataset(torch.randn(8, 1, 4, 4), torch.randn(8, 1)), batch_size=4)
    assert permutation_importance(torch.nn.Flatten(), images, torch.nn.MSELoss(),
                                  device=torch.device("cpu")) is None  # not tabular


def test_workflow_records_histograms_every_n_epochs(tmp_path: Path) -> None:
    from _workflow_toy import ARGS, ToyTrainer

    result = Workflow(ToyTrainer(dict(ARGS)), tmp_path, 3, "exp", system=False, report=False,
                      histogram_every=1).run()
    reader = RunReader(tmp_path / "exp")
    assert result is not None
    weights = [n for n in reader.histogram_names() if n.startswith("weights/")]
    assert weights and len(reader.histograms(weights[0])) == 3
    assert any(n.startswith("grads/") for n in reader.histogram_names())


def test_bad_histogram_every_is_refused_with_its_message(tmp_path: Path) -> None:
    from _workflow_toy import ARGS, ToyTrainer

    with pytest.raises(ValueError, match="histogram_every"):
        TrainingConfig(histogram_every=-1)
    with pytest.raises(TypeError, match=r"histogram_every must be an int \(epochs between "
                       r"weight and gradient histograms; 0 turns them off\), got str"):
        Workflow(ToyTrainer(dict(ARGS)), tmp_path, 1,
                 histogram_every="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WeightHistograms needs every >= 1 epochs, got 0"):
        WeightHistograms(0)
