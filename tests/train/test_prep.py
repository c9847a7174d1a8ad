"""load_and_preprocess_data (standardisation) and setup_training (seeded split, loaders)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from loopwise.train.fit.data import DataError
from loopwise.train.fit.prep import (
    Standardization,
    load_and_preprocess_data,
    setup_training,
    split_sizes,
)


def write_h5(path: Path, rows: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(rows, 3))
    X[:, 2] = 7.0  # a constant column
    Y = np.stack([X[:, 0] * 2 + 1, X[:, 1] - X[:, 0]], axis=1)
    with h5py.File(path, "w") as f:
        f["X"], f["Y"] = X, Y
    return X, Y


def test_standardises_inputs_and_targets_and_returns_the_statistics(tmp_path: Path) -> None:
    _, Y = write_h5(tmp_path / "training_data.h5")
    Xs, Ys, stats = load_and_preprocess_data(tmp_path / "training_data.h5")
    assert Xs.dtype == torch.float32 and Ys.shape == (50, 2)
    np.testing.assert_allclose(Xs[:, :2].mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(Xs[:, :2].std(0, unbiased=False).numpy(), 1, atol=1e-4)
    assert torch.all(Xs[:, 2] == 0)  # a constant column keeps scale 1 instead of dividing by 0
    np.testing.assert_allclose(stats.inverse_y(Ys.numpy()), Y, rtol=1e-4, atol=1e-4)
    again = Standardization.from_dict(stats.to_dict())
    assert again == stats


def test_other_names_and_bad_data(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["inputs"], f["out"] = np.arange(12.0).reshape(6, 2), np.arange(6.0)
    X, Y, _ = load_and_preprocess_data(tmp_path / "d.h5", x_key="inputs", y_key="out")
    assert X.shape == (6, 2) and Y.shape == (6, 1)
    with pytest.raises(DataError, match="no dataset named 'X'; it holds inputs, out"):
        load_and_preprocess_data(tmp_path / "d.h5")


def test_split_is_seeded_disjoint_and_complete() -> None:
    X = torch.arange(100.0).reshape(100, 1)
    Y = torch.arange(100.0)
    a = setup_training(X, Y, batch_size=16, val_split=0.1, test_split=0.2, seed=3)
    b = setup_training(X, Y, batch_size=16, val_split=0.1, test_split=0.2, seed=3)
    parts = [[] if loader is None else torch.cat([x for x, _ in loader]).flatten().tolist()
             for loader in (a[1], a[2])]
    train = sorted(torch.cat([x for x, _ in a[0]]).flatten().tolist())
    assert (len(train), len(parts[0]), len(parts[1])) == (70, 10, 20)
    assert sorted(train + parts[0] + parts[1]) == list(range(100))
    assert parts[0] == torch.cat([x for x, _ in b[1]]).flatten().tolist()  # same seed, same split
    c = setup_training(X, Y, seed=4)
    assert torch.cat([x for x, _ in c[1]]).flatten().tolist() != parts[0]


def test_workers_get_persistent_workers_and_zero_splits_give_none() -> None:
    X, Y = torch.zeros(20, 2), torch.zeros(20)
    train, val, test = setup_training(X, Y, 4, 0.0, 0.0, num_workers=2, pin_memory=False)
    assert val is None and test is None
    assert train.num_workers == 2 and train.persistent_workers is True
    train, _, _ = setup_training(X, Y, 4, num_workers=0)
    assert train.persistent_workers is False


def test_setup_training_errors() -> None:
    X, Y = torch.zeros(10, 2), torch.zeros(9)
    with pytest.raises(ValueError, match="X has 10 rows but Y has 9"):
        setup_training(X, Y)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        setup_training(X, torch.zeros(10), batch_size=0)
    with pytest.raises(ValueError, match=r"val_split must be a finite number in \[0, 1\), got 1.5"):
        setup_training(X, torch.zeros(10), val_split=1.5)
    with pytest.raises(ValueError, match="0 examples leave none for training"):
        split_sizes(0, 0.1, 0.1)
    with pytest.raises(TypeError, match="X must be a torch.Tensor or a numpy array, got list"):
        setup_training([[1.0]], torch.zeros(1))
    assert split_sizes(5, 0.1, 0.1) == (3, 1, 1)  # a non-zero split keeps at least one row
