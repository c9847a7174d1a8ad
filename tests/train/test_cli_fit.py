"""``loopwise fit`` on each format, task inference and override, bad data before training."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from loopwise.cli import main
from loopwise.record import RunReader
from loopwise.train.fit.cli import add_fit_parser, default_name

SMALL = ["--epochs", "2", "--hidden-size", "8", "--num-layers", "1", "--batch-size", "16"]


def blobs(rows: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, rows)
    X = rng.normal(size=(rows, 4)) + y[:, None] * 2.0
    return X, y


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["fit", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_classification_with_a_target_column(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    X, y = blobs()
    names = np.array(["low", "mid", "high"])[y]
    lines = ["a,b,c,d,kind"] + [",".join([*map(str, x), k]) for x, k in zip(X, names, strict=True)]
    (tmp_path / "flowers.csv").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli([str(tmp_path / "flowers.csv"), "--target", "kind", "--root",
                              str(tmp_path / "runs"), *SMALL], capsys)
    assert code == 0, err
    assert "flowers.csv: 120 rows, 4 inputs, classification (3 classes); target 'kind'" in out
    folder = tmp_path / "runs" / "flowers"
    assert f"Run:          {folder}  (finished)" in out
    assert f"Best model:   {folder / 'flowers_best_model.pth'}" in out
    assert f"Loss plot:    {folder / 'flowers_loss_analysis.png'}" in out
    assert f"Predictions:  {folder / 'flowers_predictions.png'}" in out
    assert "Test:         loss" in out and "accuracy" in out
    assert "Epoch 2/2 Summary:" in err and "Accuracy:" in err  # bars and summaries
    assert "Model Architecture:" in err
    meta = RunReader(folder).config()["metadata"]
    assert meta["task"] == "classification" and meta["classes"] == ["high", "low", "mid"]


def test_npz_regression_and_rerun_is_skipped(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    X, _ = blobs()
    np.savez(tmp_path / "d.npz", X=X, Y=X[:, :2].sum(axis=1) + 0.5)
    args = [str(tmp_path / "d.npz"), "--root", str(tmp_path), "--name", "reg", "--lr", "0.01",
            *SMALL]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "regression (1 outputs)" in out and "(finished)" in out
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "already trained with these parameters (--force trains again)" in out
    code, out, _ = run_cli([*args, "--force"], capsys)
    assert code == 0 and "(finished)" in out
    code, _, err = run_cli([*args[:-len(SMALL)], *SMALL[:-2], "--batch-size", "8"], capsys)
    assert code == 2  # a changed re-run is refused, its message on separate lines
    assert "\\x0a" not in err
    assert "\n  batch_size: 16 (saved) -> 8 (now)\n" in err


def test_h5_with_task_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = blobs()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["features"], f["Y"] = X, y
    code, out, err = run_cli([str(tmp_path / "d.h5"), "--inputs", "features", "--task",
                              "regression", "--root", str(tmp_path), *SMALL], capsys)
    assert code == 0, err
    assert "regression (1 outputs)" in out
    assert RunReader(tmp_path / "d").config()["loss_fn"] == "MSELoss"


@pytest.mark.parametrize(("make", "args", "message"), [
    (lambda p: None, [], r"nope.npz: no such file"),
    (lambda p: np.savez(p / "nope.npz", X=np.ones((4, 2)), Y=np.ones(3)), [],
     r"X has 4 rows but Y has 3"),
    (lambda p: np.savez(p / "nope.npz", X=np.ones((4, 2)), Y=np.array([1, 1, 1, 1])), [],
     r"has a single class \(1\)"),
    (lambda p: np.savez(p / "nope.npz", X=np.ones((4, 2)), Y=np.arange(4.0)), ["--target", "T"],
     r"no array named 'T'; it holds X, Y"),
    (lambda p: np.savez(p / "nope.npz", X=np.full((4, 2), np.nan), Y=np.arange(4.0)), [],
     r"found 8 NaN and 0 infinite values in X"),
    (lambda p: np.savez(p / "nope.npz", X=np.ones((0, 2)), Y=np.ones(0)), [],
     r"the data is empty"),
    (lambda p: np.savez(p / "nope.npz", X=np.ones((4, 2)), Y=np.arange(4.0)), ["--epochs", "0"],
     r"TrainingConfig.epochs must be an int >= 1, got 0"),
])
def test_bad_data_is_reported_before_training(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              make: object, args: list[str],
                                              message: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    code, _, err = run_cli([str(tmp_path / "nope.npz"), "--root", str(tmp_path / "runs"),
                            *args], capsys)
    assert code == 2
    assert err.startswith("loopwise fit: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_parser_and_default_name() -> None:
    parser = argparse.ArgumentParser(prog="loopwise")
    add_fit_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fit", "my data.csv", "--amp", "--lr", "0.1"])
    assert args.amp is True and args.lr == 0.1 and args.hidden_size is None
    assert args.root == "runs" and args.force is False and args.task == "auto"
    assert default_name("my data.v2.csv") == "my_data.v2"
    assert default_name("...") == "model"
