"""train_model end to end on a generated HDF5 file, with the reference's files and names."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from loopwise.record import Run, RunReader
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.reference import (
    MLP,
    TrainingMetrics,
    check_existing_model_files,
    check_existing_plots,
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
    root = tmp_path / "runs"
    assert not check_existing_model_files(root=root) and not check_existing_plots(root=root)
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
    # the seed's skip-done helpers, answered by the rule the rerun below follows
    assert check_existing_model_files("improved_model", root=root)
    assert check_existing_plots("improved_model", root=root)
    (folder / "improved_model_predictions.png").unlink()
    assert not check_existing_plots(root=root) and check_existing_model_files(root=root)
    # a second call with the same config returns the saved result instead of training
    again = train_model(*loaders, 5, 2, config=config, root=tmp_path / "runs", progress=False,
                        normalization=stats, system=False)
    assert again[1] == train_losses and again[3] == test_loss
    assert json.loads((folder / "improved_model_results.json").read_text())["epochs"] == 6


def test_mlp_shape_and_validation() -> None:
    model = MLP(4, 2, hidden_size=8, num_layers=3)
    assert model(torch.zeros(5, 4)).shape == (5, 2)
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 4
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        MLP(4, 2, hidden_size=0)


def test_config_helpers_round_trip(tmp_path: Path) -> None:
    cfg = TrainingConfig(batch_size=7)
    assert load_training_config(save_training_config(cfg, tmp_path / "c.json")) == cfg
    with pytest.raises(TypeError, match="config must be a TrainingConfig or None, got dict"):
        train_model([], None, None, 2, 1, config={"epochs": 1})  # type: ignore[arg-type]


def test_skip_done_helpers_refuse_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"invalid run model_name '\.\./x': a run name may hold"):
        check_existing_model_files("../x", root=tmp_path)
    with pytest.raises(TypeError, match="root must be a folder path, got int"):
        check_existing_plots("m", root=3)  # type: ignore[arg-type]
    # an unfinished run (interrupted: no results file) is not done work
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "m_best_model.pth").write_bytes(b"weights")
    assert not check_existing_model_files("m", root=tmp_path)


def test_training_metrics_track_the_best_epoch_and_total_time(tmp_path: Path) -> None:
    with Run.create(tmp_path, "tm") as run:
        metrics = TrainingMetrics(run=run)
        improved = [metrics.update(e, t, v, lr, 2.5) for e, t, v, lr in
                    [(1, 1.0, 0.9, 0.1), (2, 0.8, 0.7, 0.1), (3, 0.6, 0.75, 0.05)]]
    assert improved == [True, True, False]
    assert metrics.get_summary() == {
        "epochs": 3, "best_epoch": 2, "best_val_loss": 0.7, "final_train_loss": 0.6,
        "final_val_loss": 0.75, "final_lr": 0.05, "total_time_s": 7.5}
    reader = RunReader(tmp_path / "tm")  # recorded as every entry point records epochs
    assert list(reader.series("epoch/val_loss").values) == [0.9, 0.7, 0.75]
    assert list(reader.series("epoch/lr").values) == [0.1, 0.1, 0.05]
    assert list(reader.series("epoch").values) == [1.0, 2.0, 3.0]
    again = TrainingMetrics()
    again.load_state_dict(metrics.state_dict())
    assert again.get_summary() == metrics.get_summary()
    with pytest.raises(ValueError, match=r"epoch 3 is not after the last epoch added \(3\): epochs must increase"):
        metrics.update(3, 0.5)
    with pytest.raises(TypeError, match="train_loss must be a real number"):
        TrainingMetrics().update(1, "low")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch must be an int >= 1, got 0"):
        TrainingMetrics().update(0, 1.0)
    with pytest.raises(KeyError, match="TrainingMetrics state is missing 'best'"):
        TrainingMetrics().load_state_dict({k: [] for k in ("epochs", "train_losses",
                                                           "val_losses", "learning_rates",
                                                           "epoch_times")})


def test_training_metrics_from_a_fit_result(tmp_path: Path) -> None:
    from loopwise.train.reference import train_model_result

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    cfg = TrainingConfig(epochs=3, hidden_size=8, num_layers=1, patience=0, lr_patience=0,
                         device="cpu", model_name="tiny")
    result = train_model_result(loader, loader, None, 3, 1, cfg, root=tmp_path, plots=False,
                                progress=False, system=False)
    metrics = TrainingMetrics.from_result(result)
    assert metrics.train_losses == result.train_losses
    assert metrics.val_losses == result.val_losses
    assert metrics.best_epoch == result.best_epoch and len(metrics.epoch_times) == 3
    with pytest.raises(TypeError, match="result must be a FitResult"):
        TrainingMetrics.from_result({"history": []})  # type: ignore[arg-type]


def test_the_seed_names_are_public() -> None:
    import loopwise

    assert loopwise.TrainingMetrics is TrainingMetrics
    assert loopwise.check_existing_plots is check_existing_plots
    assert loopwise.check_existing_model_files is check_existing_model_files
    assert {"TrainingMetrics", "check_existing_plots", "check_existing_model_files"} <= set(
        dir(loopwise))
