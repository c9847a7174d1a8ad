"""Experiment folder files: args.json and history.csv (the checkpoint files: test_checkpoint_named)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from loopwise.train.workflow.experiment import (
    History,
    check_writable,
    normalize_args,
    read_args,
    write_args,
)


def test_args_are_normalised_like_json() -> None:
    assert normalize_args({"sizes": (1, 2), "lr": 0.1}) == {"sizes": [1, 2], "lr": 0.1}
    with pytest.raises(TypeError, match="trainer.args must be a dict"):
        normalize_args([("lr", 0.1)])
    with pytest.raises(TypeError, match=r"trainer.args\['device'\] = .* cannot be stored as JSON"):
        normalize_args({"device": torch.device("cpu")})


def test_read_args_errors_leave_the_file_alone(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no args.json, so it is not a Workflow"):
        read_args(tmp_path)
    (tmp_path / "args.json").write_text("{broken")
    with pytest.raises(ValueError, match="args.json is corrupt .* it was left as it was"):
        read_args(tmp_path)
    assert (tmp_path / "args.json").read_text() == "{broken"
    (tmp_path / "args.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a list, not a dict"):
        read_args(tmp_path)
    write_args(tmp_path, {"lr": 0.1})
    assert read_args(tmp_path) == {"lr": 0.1}


def test_history_rows_columns_and_replacement(tmp_path: Path) -> None:
    history = History(tmp_path / "history.csv")
    history.upsert({"epoch": 1.0, "loss": 0.5, "train_seconds": 1.0, "eval_seconds": 0.1})
    history.upsert({"epoch": 2.0, "loss": 0.4, "acc": 0.9, "train_seconds": 1.0,
                    "eval_seconds": 0.1})
    history.upsert({"epoch": 2.0, "loss": 0.3, "acc": 0.95, "train_seconds": 2.0,
                    "eval_seconds": 0.2})
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,acc,train_seconds,eval_seconds"
    assert lines[1] == "1,0.5,,1.0,0.1"
    assert lines[2] == "2,0.3,0.95,2.0,0.2" and len(lines) == 3
    again = History(tmp_path / "history.csv")
    again.load()
    assert again.rows == history.rows


def test_history_with_a_bad_line_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text("epoch,loss\n1,abc\n")
    with pytest.raises(ValueError, match="line 2 is not numeric"):
        History(tmp_path / "history.csv").load()


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot create the experiments folder"):
        check_writable(blocker / "x")


def test_history_neutralises_metric_names(tmp_path: Path) -> None:
    history = History(tmp_path / "history.csv")
    history.upsert({"epoch": 1.0, "@SUM(A1)": 0.5, "x\x1b[2J": 1.0, "train_seconds": 1.0,
                    "eval_seconds": 0.1})
    again = History(tmp_path / "history.csv")
    again.load()
    again.upsert({"epoch": 2.0, "@SUM(A1)": 0.25, "x\x1b[2J": 2.0, "train_seconds": 1.0,
                  "eval_seconds": 0.1})
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines == ["epoch,'@SUM(A1),x\\x1b[2J,train_seconds,eval_seconds",
                     "1,0.5,1.0,1.0,0.1", "2,0.25,2.0,1.0,0.1"]
