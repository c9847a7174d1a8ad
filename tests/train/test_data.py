"""Loading .h5/.npz/.csv tables, task inference, and every bad-data message."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from loopwise.train.fit.data import DataError, infer_task, load_table


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_h5_npz_and_csv_load_the_same_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    Y = (X[:, 0] > 0).astype(np.int64)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"], f["Y"] = X, Y
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    rows = "\n".join(",".join([*(repr(float(v)) for v in x), str(int(y))]) for x, y in zip(X, Y))
    _csv(tmp_path / "d.csv", "a,b,c,label\n" + rows + "\n")
    tables = [load_table(tmp_path / "d.h5"), load_table(tmp_path / "d.npz"),
              load_table(tmp_path / "d.csv", target="label")]
    for t in tables:
        assert t.task == "classification" and t.classes == [0, 1] and t.n_outputs == 2
        np.testing.assert_allclose(t.X, X.astype(np.float32))
        np.testing.assert_array_equal(t.Y, Y)
        assert t.X.dtype == np.float32 and t.Y.dtype == np.int64
    assert tables[2].feature_names == ["a", "b", "c"] and tables[2].target == "label"


def test_other_dataset_names_and_regression_shape(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["inputs"] = np.arange(20.0).reshape(10, 2)
        f["grp/out"] = np.linspace(0, 1, 10)
    t = load_table(tmp_path / "d.hdf5", inputs="inputs", target="grp/out")
    assert t.task == "regression" and t.Y.shape == (10, 1) and t.Y.dtype == np.float32
    assert t.n_outputs == 1


def test_csv_defaults_to_the_target_column_else_the_last(tmp_path: Path) -> None:
    t = load_table(_csv(tmp_path / "a.csv", "target,x\n1.5,1\n2.5,2\n3.25,3\n"))
    assert t.target == "target" and t.feature_names == ["x"]
    t = load_table(_csv(tmp_path / "b.csv", "x,y\n1,0.5\n2,1.5\n3,2.75\n"))
    assert t.target == "y" and t.task == "regression"


def test_string_labels_become_class_indices(tmp_path: Path) -> None:
    t = load_table(_csv(tmp_path / "s.csv", "x,kind\n1,cat\n2,dog\n3,cat\n4,dog\n"))
    assert t.task == "classification" and t.classes == ["cat", "dog"]
    assert t.Y.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(("values", "expected"), [
    (np.array([0, 1, 2, 1, 0, 2]), "classification"),
    (np.array([0.0, 1.0, 1.0, 0.0]), "classification"),
    (np.array(["a", "b", "a"]), "classification"),
    (np.array([True, False, True]), "classification"),
    (np.array([0.5, 1.2, 3.3]), "regression"),
    (np.arange(400) % 200, "regression"),  # 200 distinct integers: a count, not classes
    (np.arange(10), "regression"),  # as many values as rows
    (np.zeros((5, 2)), "regression"),  # several outputs
])
def test_infer_task(values: np.ndarray, expected: str) -> None:
    assert infer_task(values) == expected


def test_task_override(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((6, 2)) * np.arange(6)[:, None], Y=[0, 1, 2, 0, 1, 2])
    assert load_table(tmp_path / "d.npz", task="regression").task == "regression"
    with pytest.raises(ValueError, match="task must be 'classification' or 'regression'"):
        load_table(tmp_path / "d.npz", task="ranking")


# -- every bad-data message ----------------------------------------------------------------

def _raises(path: Path, pattern: str, **kw: object) -> None:
    with pytest.raises(DataError, match=pattern):
        load_table(path, **kw)  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.h5", r"nope.h5: no such file; check the path")


def test_unsupported_format(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.txt", "x"), r"unsupported format '.txt'; use one of .h5, .hdf5")


def test_missing_h5_dataset_lists_what_is_there(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"], f["labels"] = np.ones((3, 2)), np.ones(3)
    _raises(tmp_path / "d.h5", r"no dataset named 'Y'; it holds X, labels")


def test_missing_npz_array_lists_what_is_there(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", features=np.ones((3, 2)), Y=np.ones(3))
    _raises(tmp_path / "d.npz", r"no array named 'X'; it holds features, Y")


def test_missing_csv_column_lists_the_columns(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.csv", "a,b\n1,2\n"), r"no column named 'price'; columns: a, b",
            target="price")


def test_length_mismatch(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((5, 2)), Y=np.ones(4))
    _raises(tmp_path / "d.npz", r"X has 5 rows but Y has 4; inputs and targets must have one "
                                r"row per example")


def test_nan_in_inputs_names_columns_and_first_row(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.csv", "a,b,y\n1,2,0\n3,,1\n4,nan,0\n5,6,1\n"),
            r"found 2 NaN and 0 infinite values in the inputs \(2 rows, columns 'b'; the first "
            r"is data row 1, counting from 0\); remove or impute them before training")


def test_nan_or_inf_in_arrays(tmp_path: Path) -> None:
    X = np.ones((4, 2))
    X[2, 1] = np.inf
    np.savez(tmp_path / "d.npz", X=X, Y=np.arange(4.0))
    _raises(tmp_path / "d.npz", r"found 0 NaN and 1 infinite values in X \(1 rows; the first is data "
                                r"row 2")
    np.savez(tmp_path / "e.npz", X=np.ones((4, 2)), Y=[1.0, np.nan, 2.0, 3.0])
    _raises(tmp_path / "e.npz", r"found 1 NaN and 0 infinite values in Y")


def test_empty_data(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((0, 3)), Y=np.ones(0))
    _raises(tmp_path / "d.npz", r"no examples \(X has 0 rows, Y has 0\); the data is empty")
    _raises(_csv(tmp_path / "h.csv", "a,b\n"), r"a header but no data rows; the data is empty")
    _raises(_csv(tmp_path / "e.csv", ""), r"the file is empty; it needs a header row")


def test_single_class_target(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.arange(8.0).reshape(4, 2), Y=np.array([3, 3, 3, 3]))
    _raises(tmp_path / "d.npz", r"the target 'Y' has a single class \(3\); a classifier needs "
                                r"at least two")


def test_constant_regression_target(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.arange(8.0).reshape(4, 2), Y=np.full(4, 2.5))
    _raises(tmp_path / "d.npz", re.escape("the target 'Y' takes a single value ([2.5]); there "
                                          "is nothing to learn"))


def test_non_numeric_input_column(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.csv", "city,x,y\nParis,1,0\nRome,2,1\n"),
            r"column 'city' is not numeric \(line 2: 'Paris'\); inputs must be numbers")


def test_ragged_csv_line(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.csv", "a,b,y\n1,2,0\n3,1\n"),
            r"line 3 has 2 fields but the header has 3")


def test_only_a_target_column(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.csv", "y\n1\n2\n"), r"only the target column 'y'; inputs are "
                                                     r"missing")


def test_unreadable_h5(tmp_path: Path) -> None:
    _raises(_csv(tmp_path / "d.h5", "not hdf5"), r"cannot be opened as HDF5")
