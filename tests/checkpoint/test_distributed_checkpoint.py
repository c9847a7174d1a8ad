"""``save_checkpoint`` (the torchrun checkpoint) writes through the checkpoint store: the file's
hash is in its folder's manifest, the write is atomic, and the safe loaders verify it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from loopwise.checkpoint.distributed import load_checkpoint, save_checkpoint
from loopwise.checkpoint.errors import CorruptCheckpointError
from loopwise.checkpoint.hashing import digest_file
from loopwise.checkpoint.weights import load_state_dict_safely


def test_the_file_and_its_hash_are_in_the_folders_manifest(tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.arange(4.0)}}, batches_done=2, step=40)
    entries = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())["entries"]
    (entry,) = [e for e in entries if e["file"] == "c.pt"]
    stored = digest_file(path)
    assert (entry["size"], entry["hash"], entry["step"]) == (stored.size, stored.hash, 40)
    assert not list((tmp_path / "ckpt").glob(".c.pt.*.tmp"))  # the temp file took its name
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.arange(4.0))
    assert state["distributed"] == {"world_size": 1, "batches_done": 2, "sampler_epoch": None}


def test_a_second_save_replaces_the_entry_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}})
    save_checkpoint(path, {"model": {"w": torch.ones(3)}}, step=7)
    entries = json.loads((tmp_path / "manifest.json").read_text())["entries"]
    assert [e["file"] for e in entries] == ["c.pt"] and entries[0]["step"] == 7
    assert torch.equal(load_state_dict_safely(path)["w"], torch.ones(3))
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="c.pt is unusable"):
        load_state_dict_safely(path)


def test_a_bad_step_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        save_checkpoint(tmp_path / "c.pt", {}, step=-1)
    assert list(tmp_path.iterdir()) == []
