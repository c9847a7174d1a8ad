"""plot_losses and plot_predictions: PNG files in the run folder, clear errors, missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from loopwise.train.fit.predict import plot_predictions
from loopwise.view.plots import plot_losses

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_losses_writes_the_reference_file(tmp_path: Path) -> None:
    path = plot_losses([1.0, 0.5, 0.2, float("nan")], [1.2, 0.6, 0.4, 0.5], "exp",
                       out_dir=tmp_path)
    assert path == tmp_path / "exp_loss_analysis.png"
    assert path.read_bytes()[:8] == PNG
    assert plot_losses([3.0], path=tmp_path / "only_train.png").read_bytes()[:8] == PNG


def test_plot_losses_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train_losses is empty: train for at least one epoch"):
        plot_losses([], [], out_dir=tmp_path)
    with pytest.raises(ValueError, match="val_losses has 1 values but train_losses has 2"):
        plot_losses([1.0, 2.0], [1.0], out_dir=tmp_path)
    with pytest.raises(TypeError, match=r"train_losses\[1\] is not a number: 'x'"):
        plot_losses([1.0, "x"], out_dir=tmp_path)  # type: ignore[list-item]
    with pytest.raises(FileNotFoundError, match="out_dir .*missing is not a folder"):
        plot_losses([1.0], out_dir=tmp_path / "missing")


def test_plot_predictions_regression_and_classification(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reg = torch.nn.Linear(3, 2)
    loader = [(torch.randn(8, 3), torch.randn(8, 2)) for _ in range(3)]
    path = plot_predictions(reg, loader, 2, stride=2, model_name="reg", out_dir=tmp_path)
    assert path == tmp_path / "reg_predictions.png" and path.read_bytes()[:8] == PNG
    clf = torch.nn.Linear(3, 4)
    loader = [(torch.randn(8, 3), torch.randint(0, 4, (8,))) for _ in range(2)]
    path = plot_predictions(clf, loader, 4, model_name="clf", out_dir=tmp_path)
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
        plot_predictions(reg, loader, 2, stride=0, out_dir=tmp_path)


def test_missing_matplotlib_names_the_extra(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    with pytest.raises(ImportError, match=r"plotting needs matplotlib: pip install "
                                          r"'loopwise\[plots\]'"):
        plot_losses([1.0], out_dir=tmp_path)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ImportError, match=r"loopwise\[plots\]"):
        plot_predictions(model, [(torch.ones(2, 1), torch.ones(2, 1))], 1, out_dir=tmp_path)
