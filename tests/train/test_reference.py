"""train_model end to end on a generated HDF5 file, with the reference's files and names."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from loopwise.record import RunReader
from loopwise.train.config import TrainingConfig
from loopwise.train.reference import (
    MLP,
    load_and_preprocess_data,
    load_training_config,
    save_training_config,
    setup_training,
    train_model,
)


def test_train_model_end_to_end_on_hdf5(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 5))
    Y = np.stack([X @ rng.normal(size=5), np.sin(X[:, 0])], axis=1)
    with h5py.File(tmp_path / "training_data.h5", "w") as f:
        f["X"], f["Y"] = X, Y
    Xs, Ys, stats = load_and_preprocess_data(tmp_path / "training_data.h5")
    loaders = setup_training(Xs, Ys, batch_size=32)
    config = TrainingConfig()
    config.update(hidden_size=32, num_layers=2, epochs=6, learning_rate=5e-3, patience=0,
                  dropout=0.0, device="cpu")
    model, train_losses, val_losses, test_loss = train_model(
        *loaders, Xs.shape[1], Ys.shape[1], config=config, root=tmp_path / "runs",
        normalization=stats, progress=False, system=False)
    assert isinstance(model, MLP)
    assert len(train_losses) == len(val_losses) == 6
    assert train_losses[-1] < 0.5 * train_losses[0]  # it learns
    assert test_loss is not None and test_loss < 1.0
    folder = tmp_path / "runs" / "improved_model"
    for suffix in ("best_model.pth", "config.json", "training.log", "loss_analysis.png",
                   "predictions.png", "results.json"):
        assert (folder / f"improved_model_{suffix}").is_file(), suffix
    saved = RunReader(folder).config()
    assert saved["metadata"]["normalization"]["x_mean"] == stats.x_mean
    assert saved["hidden_size"] == 32 and saved["metadata"]["input_dim"] == 5
    # a second call with the same config returns the saved result instead of training
    again = train_model(*loaders, 5, 2, config=config, root=tmp_path / "runs", progress=False,
                        normalization=stats, system=False)
    assert again[1] == train_losses and again[3] == test_loss
    assert json.loads((folder / "improved_model_results.json").read_text())["epochs"] == 6


def test_mlp_shape_and_validation() -> None:
    model = MLP(4, 2, hidden_size=8, num_layers=3)
    assert model(torch.zeros(5, 4)).shape == (5, 2)
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 4
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1, got 0"):
        MLP(4, 2, hidden_size=0)


def test_config_helpers_round_trip(tmp_path: Path) -> None:
    cfg = TrainingConfig(batch_size=7)
    assert load_training_config(save_training_config(cfg, tmp_path / "c.json")) == cfg
    with pytest.raises(TypeError, match="config must be a TrainingConfig or None, got dict"):
        train_model([], None, None, 2, 1, config={"epochs": 1})  # type: ignore[arg-type]
