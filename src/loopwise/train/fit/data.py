"""Load a table of examples for ``loopwise fit`` and refuse bad data before training starts.

Formats, by extension:

- ``.h5`` / ``.hdf5``: datasets ``X`` (inputs) and ``Y`` (targets); other names selectable
  (needs ``h5py``: ``pip install 'loopwise[hdf5]'``);
- ``.npz``: arrays ``X`` and ``Y``, other names selectable; loaded with ``allow_pickle=False``;
- ``.csv``: a header row; the target is one column (``target=``; default: a column named
  ``target``, else the last one); every other column is an input and must be numeric.

:func:`load_table` returns a :class:`Table`; every problem (missing file, missing dataset or
column, X/Y length mismatch, NaN or infinity, no rows, a target with a single value or class,
non-numeric inputs) is a :class:`DataError` naming the file and what is wrong.

:func:`infer_task` decides classification vs regression from the target: strings and booleans
are classes; integer-valued numbers are classes when there are at most ``max_classes`` distinct
values and at most half as many distinct values as rows; anything else is regression.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = (".h5", ".hdf5", ".npz", ".csv")
TASKS = ("classification", "regression")


class DataError(ValueError):
    """The data cannot be trained on; the message names the file and the problem."""


@dataclass
class Table:
    """Examples ready for training: inputs ``X`` (float32, rows x features) and targets ``Y``.

    For classification ``Y`` holds class indices (int64, 0..n_classes-1) and ``classes`` the
    original labels; for regression ``Y`` is float32 with shape (rows, outputs).
    """

    X: np.ndarray
    Y: np.ndarray
    task: str
    source: Path
    target: str
    feature_names: list[str] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output units a model needs: classes for classification, target columns otherwise."""
        return len(self.classes) if self.task == "classification" else int(self.Y.shape[1])


def load_table(path: str | Path, *, target: str | None = None, inputs: str = "X",
               task: str | None = None, max_classes: int = 100) -> Table:
    """Load and validate ``path``; ``task`` overrides the inferred one."""
    source = Path(path)
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if not source.exists():
        raise DataError(f"{source}: no such file; check the path")
    suffix = source.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{source}: unsupported format {suffix or '(no extension)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    if suffix == ".csv":
        X, Y, names, target_name = _read_csv(source, target)
        x_name = "the inputs"
    else:
        y_key = target if target is not None else "Y"
        reader = _read_npz if suffix == ".npz" else _read_h5
        X, Y = reader(source, inputs, y_key)
        target_name = y_key
        names = []
        x_name = inputs
    X, Y = check_arrays(X, Y, source=source, x_name=x_name, y_name=target_name,
                        columns=names or None)
    if not names:
        names = [f"x{i}" for i in range(X.shape[1])]
    chosen = task or infer_task(Y, max_classes=max_classes)
    return _finish(X, Y, chosen, source, target_name, names)


def check_arrays(X: Any, Y: Any, *, source: Path | str = "data", x_name: str = "X",
                 y_name: str = "Y", columns: list[str] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs and targets; return X as float32 (rows x features) and Y as loaded."""
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim == 0 or Y.ndim == 0:
        raise DataError(f"{source}: {x_name} and {y_name} must be arrays with one row per "
                        f"example; got shapes {X.shape} and {Y.shape}")
    if len(X) == 0 or len(Y) == 0:
        raise DataError(f"{source}: no examples ({x_name} has {len(X)} rows, "
                        f"{y_name} has {len(Y)}); the data is empty")
    if len(X) != len(Y):
        raise DataError(f"{source}: {x_name} has {len(X)} rows but {y_name} has {len(Y)}; "
                        "inputs and targets must have one row per example")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: {x_name} is not numeric (dtype {X.dtype}); "
                        "inputs must be numbers")
    X = X.reshape(len(X), -1).astype(np.float32, copy=False)
    if X.shape[1] == 0:
        raise DataError(f"{source}: {x_name} has no features (shape {X.shape})")
    _check_finite(X, source, x_name, columns)
    if Y.dtype.kind in "biuf":
        _check_finite(Y.astype(np.float64, copy=False), source, y_name)
    return X, Y


def _check_finite(a: np.ndarray, source: Path | str, name: str,
                  columns: list[str] | None = None) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        flat = bad.reshape(len(a), -1)
        rows = np.nonzero(flat.any(axis=1))[0]
        nans = int(np.isnan(a).sum())
        where = ""
        if columns is not None and flat.shape[1] == len(columns):
            cols = [columns[int(c)] for c in np.nonzero(flat.any(axis=0))[0]]
            where = f", columns {', '.join(repr(c) for c in cols)}"
        raise DataError(
            f"{source}: found {nans} NaN and {int(bad.sum()) - nans} infinite values in "
            f"{name} ({len(rows)} rows{where}; the first is data row {int(rows[0])}, "
            "counting from 0); "
            "remove or impute them before training"
        )


def infer_task(Y: Any, *, max_classes: int = 100) -> str:
    """'classification' or 'regression' for target values ``Y`` (see the module docstring)."""
    y = np.asarray(Y)
    if y.ndim > 1 and y.shape[1:] != (1,) and int(np.prod(y.shape[1:])) > 1:
        return "regression"
    y = y.reshape(-1)
    if y.dtype.kind in "bOSU":
        return "classification"
    integral = y.dtype.kind in "iu" or (y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0)))
    if not integral:
        return "regression"
    n_unique = len(np.unique(y))
    if n_unique <= max_classes and n_unique <= max(2, len(y) // 2):
        return "classification"
    return "regression"


def _finish(X: np.ndarray, Y: np.ndarray, task: str, source: Path, target: str,
            names: list[str]) -> Table:
    if task == "classification":
        if Y.ndim > 1 and int(np.prod(Y.shape[1:])) > 1:
            raise DataError(f"{source}: a classification target must be one label per row; "
                            f"{target} has shape {Y.shape}")
        labels, index = np.unique(Y.reshape(-1), return_inverse=True)
        if len(labels) < 2:
            raise DataError(
                f"{source}: the target {target!r} has a single class ({labels.tolist()[0]!r}); "
                "a classifier needs at least two"
            )
        classes = [v.item() if hasattr(v, "item") else v for v in labels]
        return Table(X, index.astype(np.int64), task, source, target, names, classes)
    if Y.dtype.kind not in "biuf":
        raise DataError(f"{source}: the target {target!r} is not numeric (dtype {Y.dtype}); "
                        "regression needs numbers (or use task='classification')")
    y = Y.reshape(len(Y), -1).astype(np.float32)
    if np.all(y == y[0]):
        raise DataError(f"{source}: the target {target!r} takes a single value "
                        f"({y[0].tolist()}); there is nothing to learn")
    return Table(X, y, task, source, target, names, [])


def _read_npz(source: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        archive = np.load(source, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{source}: cannot be read as .npz ({exc})") from exc
    with archive:
        for key in (x_key, y_key):
            if key not in archive.files:
                raise DataError(f"{source}: no array named {key!r}; it holds "
                                f"{', '.join(archive.files) or 'nothing'}")
        try:
            return archive[x_key], archive[y_key]
        except ValueError as exc:
            raise DataError(f"{source}: cannot read the arrays ({exc})") from exc


def _read_h5(source: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "reading .h5/.hdf5 files needs h5py: pip install 'loopwise[hdf5]'"
        ) from None
    try:
        handle = h5py.File(source, "r")
    except OSError as exc:
        raise DataError(f"{source}: cannot be opened as HDF5 ({exc})") from exc
    with handle:
        names: list[str] = []
        handle.visit(lambda name: names.append(name)
                     if isinstance(handle[name], h5py.Dataset) else None)
        for key in (x_key, y_key):
            if key not in handle or not isinstance(handle[key], h5py.Dataset):
                raise DataError(f"{source}: no dataset named {key!r}; it holds "
                                f"{', '.join(names) or 'no datasets'}")
        return np.asarray(handle[x_key][()]), np.asarray(handle[y_key][()])


def _read_csv(source: Path, target: str | None
              ) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{source}: the file is empty; it needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if target is None:
        target = "target" if "target" in header else header[-1]
    if target not in header:
        raise DataError(f"{source}: no column named {target!r}; columns: {', '.join(header)}")
    if len(header) < 2:
        raise DataError(f"{source}: only the target column {target!r}; inputs are missing")
    if not body:
        raise DataError(f"{source}: a header but no data rows; the data is empty")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{source}: line {i} has {len(row)} fields but the header has "
                            f"{len(header)}")
    t = header.index(target)
    features = [c for c in range(len(header)) if c != t]
    X = np.empty((len(body), len(features)), dtype=np.float64)
    for j, c in enumerate(features):
        for i, row in enumerate(body):
            X[i, j] = _cell(row[c], source, header[c], i + 2)
    raw = [row[t].strip() for row in body]
    Y: np.ndarray
    try:
        Y = np.array([float(v) if v else float("nan") for v in raw])
    except ValueError:
        if "" in raw:
            line = raw.index("") + 2
            raise DataError(f"{source}: the target {target!r} is empty on line {line}; "
                            "fill or drop that row") from None
        Y = np.array(raw)
    return X, Y, [header[c] for c in features], target


def _cell(text: str, source: Path, column: str, line: int) -> float:
    text = text.strip()
    if not text or text.lower() in ("nan", "na", "null"):
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{source}: column {column!r} is not numeric (line {line}: {text!r}); "
                        "inputs must be numbers: encode or drop that column") from None
