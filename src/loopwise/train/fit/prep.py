"""Data preparation of the reference: ``load_and_preprocess_data`` and ``setup_training``.

``load_and_preprocess_data(file_path)`` reads inputs ``X`` and targets ``Y`` (HDF5 by default;
``.npz`` and ``.csv`` too, see :mod:`loopwise.train.fit.data`), refuses bad data, and standardises
both to zero mean and unit variance per column. The statistics come back as a
:class:`Standardization` (JSON-ready) so they can be saved with the run and applied to new
inputs; a constant column keeps a scale of 1. The statistics are computed on the whole file,
before the split, as the reference does; compute them on the training rows only when the
validation score must be free of that (small) leak.

``setup_training(X, Y, ...)`` splits with a seeded permutation and returns three DataLoaders
(the validation and test ones are None when their fraction is 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.train.fit.data import load_table
from loopwise.utils.validate import check_float, check_int


@dataclass
class Standardization:
    """Per-column mean and standard deviation of the inputs (and of regression targets)."""

    x_mean: list[float]
    x_std: list[float]
    y_mean: list[float] | None = None
    y_std: list[float] | None = None

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray | None = None) -> Standardization:
        def stats(a: np.ndarray) -> tuple[list[float], list[float]]:
            a64 = a.reshape(len(a), -1).astype(np.float64)
            std = a64.std(axis=0)
            std[std == 0] = 1.0
            return a64.mean(axis=0).tolist(), std.tolist()

        xm, xs = stats(X)
        if Y is None:
            return cls(xm, xs)
        ym, ys = stats(Y)
        return cls(xm, xs, ym, ys)

    def transform_x(self, X: np.ndarray) -> np.ndarray:
        out = (X - np.asarray(self.x_mean)) / np.asarray(self.x_std)
        return np.asarray(out, dtype=np.float32)

    def transform_y(self, Y: np.ndarray) -> np.ndarray:
        if self.y_mean is None or self.y_std is None:
            return Y
        out = (Y - np.asarray(self.y_mean)) / np.asarray(self.y_std)
        return np.asarray(out, dtype=np.float32)

    def inverse_y(self, Y: np.ndarray) -> np.ndarray:
        """Targets (or predictions) back in the file's units."""
        if self.y_mean is None or self.y_std is None:
            return Y
        return np.asarray(Y * np.asarray(self.y_std) + np.asarray(self.y_mean))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardization:
        return cls(**data)


class Preprocessed(NamedTuple):
    X: torch.Tensor
    Y: torch.Tensor
    stats: Standardization


def load_and_preprocess_data(file_path: str | Path = "training_data.h5", *, x_key: str = "X",
                             y_key: str = "Y", standardize_y: bool = True) -> Preprocessed:
    """Read and standardise ``(X, Y)`` from ``file_path``; returns ``(X, Y, stats)``.

    ``x_key``/``y_key`` select other dataset names (for a CSV, ``y_key`` is the target column
    and every other column an input). Targets are treated as regression values.
    """
    table = load_table(file_path, target=y_key, inputs=x_key, task="regression")
    stats = Standardization.fit(table.X, table.Y if standardize_y else None)
    X = torch.from_numpy(stats.transform_x(table.X))
    Y = torch.from_numpy(np.ascontiguousarray(stats.transform_y(table.Y), dtype=np.float32))
    return Preprocessed(X, Y, stats)


def _as_tensor(a: Any, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(a).__name__}")


def split_sizes(n: int, val_split: float, test_split: float) -> tuple[int, int, int]:
    """(train, val, test) sizes; a non-zero fraction gets at least one row when n >= 3."""
    for name, frac in (("val_split", val_split), ("test_split", test_split)):
        check_float(frac, what=name, minimum=0, maximum=1, open_max=True)
    if val_split + test_split >= 1:
        raise ValueError(f"val_split + test_split must be < 1 to leave rows for training; "
                         f"got {val_split} + {test_split}")
    n_val = math.floor(n * val_split)
    n_test = math.floor(n * test_split)
    if val_split > 0 and n_val == 0 and n >= 3:
        n_val = 1
    if test_split > 0 and n_test == 0 and n >= 3:
        n_test = 1
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} examples leave none for training after the split; "
                         "use more data or smaller val_split/test_split")
    return n_train, n_val, n_test


def setup_training(X: Any, Y: Any, batch_size: int = 32, val_split: float = 0.1,
                   test_split: float = 0.1, *, seed: int = 42, num_workers: int = 0,
                   pin_memory: bool | None = None
                   ) -> tuple[DataLoader[Any], DataLoader[Any] | None, DataLoader[Any] | None]:
    """Seeded split of ``(X, Y)`` into train/validation/test DataLoaders.

    The training loader shuffles with its own seeded generator; ``num_workers > 0`` adds
    ``persistent_workers=True``; ``pin_memory`` defaults to "CUDA is available".
    """
    Xt, Yt = _as_tensor(X, "X"), _as_tensor(Y, "Y")
    if len(Xt) != len(Yt):
        raise ValueError(f"X has {len(Xt)} rows but Y has {len(Yt)}; they must match")
    if len(Xt) == 0:
        raise ValueError("X and Y are empty: no examples to train on")
    check_int(batch_size, what="batch_size", minimum=1)
    check_int(num_workers, what="num_workers", minimum=0)
    n_train, n_val, n_test = split_sizes(len(Xt), val_split, test_split)
    order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(seed))
    parts = torch.split(order, [n_train, n_val, n_test])
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    extra: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin}
    if num_workers > 0:
        extra["persistent_workers"] = True

    def loader(idx: torch.Tensor, train: bool) -> DataLoader[Any] | None:
        if len(idx) == 0:
            return None
        data = TensorDataset(Xt[idx], Yt[idx])
        gen = torch.Generator().manual_seed(seed + 1) if train else None
        return DataLoader(data, batch_size=batch_size, shuffle=train, generator=gen, **extra)

    train_loader = loader(parts[0], True)
    assert train_loader is not None
    return train_loader, loader(parts[1], False), loader(parts[2], False)
