"""Experiment folder files: args.json, history.csv, the hashed last checkpoint and weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from loopwise.train.checkpoint_store import CorruptCheckpointError, StagedFile
from loopwise.train.experiment import (
    CheckpointFiles,
    History,
    args_diff,
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


def test_args_diff_shows_changed_added_and_removed() -> None:
    diff = args_diff({"lr": 0.1, "bs": 32, "old": 1}, {"lr": 0.01, "bs": 32, "new": True})
    assert diff == ["lr: 0.1 (saved) -> 0.01 (now)", "+ new: True (given now, not saved)",
                    "- old: 1 (saved, not given now)"]


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


def _state(epoch: int) -> dict[str, object]:
    return {"epoch": epoch, "w": torch.full((3,), float(epoch))}


def test_checkpoint_files_round_trip_with_hashes(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path)
    assert not files.exists()
    files.save(_state(1), {"w": torch.ones(3)}, epoch=1)
    files.save(_state(2), {"w": torch.ones(3) * 2}, epoch=2)
    state, note = files.load()
    assert state["epoch"] == 2 and note is None
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    entry = manifest["files"]["last_checkpoint.pth"]
    assert entry["current"]["epoch"] == 2 and entry["previous"]["epoch"] == 1
    assert entry["current"]["algorithm"] == "xxh3_128"
    assert torch.equal(torch.load(tmp_path / "last_weights.pt", weights_only=True)["w"],
                       torch.ones(3) * 2)


def test_a_crash_between_manifest_and_rename_still_loads(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    files = CheckpointFiles(tmp_path)
    files.save(_state(1), {}, epoch=1)

    def killed(self: StagedFile) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL after the manifest was written

    monkeypatch.setattr(StagedFile, "commit", killed)
    with pytest.raises(KeyboardInterrupt):
        files.save(_state(2), {}, epoch=2)
    monkeypatch.undo()
    state, _ = files.load()
    assert state["epoch"] == 1  # the previous hash still vouches for the file on disk
    assert list(tmp_path.glob(".*.tmp"))
    files.remove_leftovers()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_checkpoint_is_refused(tmp_path: Path, damage: str) -> None:
    files = CheckpointFiles(tmp_path)
    files.save(_state(1), {}, epoch=1)
    path = tmp_path / "last_checkpoint.pth"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-50]
    elif damage == "flip":
        data[40] ^= 0x04
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="last_checkpoint.pth is unusable"):
        files.load()


def test_missing_manifest_loads_unverified_with_a_note(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path)
    files.save(_state(1), {}, epoch=1)
    (tmp_path / "checkpoint.json").unlink()
    state, note = files.load()
    assert state["epoch"] == 1 and note is not None and "without a hash check" in note


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
