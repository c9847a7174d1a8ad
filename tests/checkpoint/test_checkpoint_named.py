"""Fixed-name checkpoint files (last_checkpoint.pth, last_weights.pt, <name>_best_model.pth):
hashed in the folder's manifest.json, verified on every load, crash-safe in the commit window,
and a full disk said as such."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from loopwise.checkpoint.hashing import HashingWriter
from loopwise.checkpoint.named import NamedFiles
from loopwise.checkpoint.store import (
    CorruptCheckpointError,
    DiskFullError,
    StagedFile,
    UnverifiedCheckpointError,
)


def _state(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "w": torch.full((3,), float(epoch))}


def _save(files: NamedFiles, epoch: int) -> None:
    files.save({"last_checkpoint.pth": _state(epoch), "last_weights.pt": {"w": _state(epoch)["w"]}},
               step=epoch)


def test_round_trip_with_hashes_in_the_manifest(tmp_path: Path) -> None:
    files = NamedFiles(tmp_path)
    assert not files.exists("last_checkpoint.pth")
    _save(files, 1)
    _save(files, 2)
    state, verified = files.load("last_checkpoint.pth")
    assert state["epoch"] == 2 and verified
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entries = {e["file"]: e for e in manifest["entries"]}
    assert entries["last_checkpoint.pth"]["step"] == 2
    assert entries["last_checkpoint.pth"]["algorithm"] == "xxh3_128"
    assert torch.equal(torch.load(tmp_path / "last_weights.pt", weights_only=True)["w"],
                       torch.full((3,), 2.0))


def _killed_in_commit(files: NamedFiles, epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(self: StagedFile) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL after the manifest was written

    monkeypatch.setattr(StagedFile, "commit", killed)
    with pytest.raises(KeyboardInterrupt):
        _save(files, epoch)
    monkeypatch.undo()


def test_a_crash_between_manifest_and_rename_still_loads(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _save(NamedFiles(tmp_path), 1)
    _killed_in_commit(NamedFiles(tmp_path), 2, monkeypatch)
    state, verified = NamedFiles(tmp_path).load("last_checkpoint.pth")
    assert state["epoch"] == 1 and verified  # the previous hash vouches for the file on disk
    assert list(tmp_path.glob(".*.tmp"))
    NamedFiles(tmp_path).remove_leftovers(["last_checkpoint.pth", "last_weights.pt"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_two_crashes_in_the_commit_window_keep_the_intact_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(NamedFiles(tmp_path), 1)
    _killed_in_commit(NamedFiles(tmp_path), 2, monkeypatch)  # first process dies
    second = NamedFiles(tmp_path)  # the resumed process loads, then dies in the window again
    assert second.load("last_checkpoint.pth")[0]["epoch"] == 1
    _killed_in_commit(second, 2, monkeypatch)
    third = NamedFiles(tmp_path)  # a process that did not load first dies in the window too
    _killed_in_commit(third, 3, monkeypatch)
    state, verified = NamedFiles(tmp_path).load("last_checkpoint.pth")
    assert state["epoch"] == 1 and verified
    weights, _ = NamedFiles(tmp_path).load("last_weights.pt")
    assert torch.equal(weights["w"], torch.full((3,), 1.0))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    _save(NamedFiles(tmp_path), 1)
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
        NamedFiles(tmp_path).load("last_checkpoint.pth")


@pytest.mark.parametrize("manifest", ["missing", "unreadable"])
def test_an_unverifiable_file_needs_an_explicit_opt_in(tmp_path: Path, manifest: str) -> None:
    _save(NamedFiles(tmp_path), 1)
    if manifest == "missing":
        (tmp_path / "manifest.json").unlink()
    else:
        (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UnverifiedCheckpointError,
                       match=r"last_checkpoint.pth cannot be verified: .*manifest.json"):
        NamedFiles(tmp_path).load("last_checkpoint.pth")
    state, verified = NamedFiles(tmp_path).load("last_checkpoint.pth", allow_unverified=True)
    assert state["epoch"] == 1 and not verified


def test_a_full_disk_is_said_and_the_previous_file_is_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = NamedFiles(tmp_path)
    _save(files, 1)

    def full(self: HashingWriter, view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashingWriter, "_write_all", full)
    with pytest.raises(DiskFullError) as caught:
        _save(files, 2)
    message = str(caught.value)
    assert message.startswith(f"the disk is full: writing last_checkpoint.pth in {tmp_path} ")
    assert "No space left on device" in message
    assert f"the previous checkpoint {tmp_path / 'last_checkpoint.pth'}" in message
    assert "(step 1) is intact" in message
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*.tmp"))  # the partial file is gone
    assert files.load("last_checkpoint.pth")[0]["epoch"] == 1


def test_a_full_disk_in_the_manager_names_its_newest_kept_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopwise.checkpoint.manager import CheckpointManager

    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save(_state(1), step=10)

    def full(self: HashingWriter, view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashingWriter, "_write_all", full)
    with pytest.raises(DiskFullError) as caught:
        manager.save(_state(2), step=20)
    message = str(caught.value)
    assert message.startswith(f"the disk is full: writing checkpoint-step00000020.pt in "
                              f"{tmp_path} failed (No space left on device)")
    assert f"the previous checkpoint {tmp_path / 'checkpoint-step00000010.pt'} (step 10) is " \
           "intact" in message
    monkeypatch.undo()
    latest = manager.load_latest()
    assert latest is not None and latest["epoch"] == 1


def test_the_replaced_file_is_recycled_but_never_the_live_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = NamedFiles(tmp_path)
    _save(files, 1)
    first = (tmp_path / "last_checkpoint.pth").stat().st_ino
    _save(files, 2)
    spare = tmp_path / ".spare-last_checkpoint.pth"
    assert spare.stat().st_ino == first  # the replaced file waits to be written over
    _save(files, 3)
    assert (tmp_path / "last_checkpoint.pth").stat().st_ino == first  # its blocks reused
    _killed_in_commit(files, 4, monkeypatch)  # the spare is now a second name of the live file
    _save(NamedFiles(tmp_path), 5)
    state, verified = NamedFiles(tmp_path).load("last_checkpoint.pth")
    assert state["epoch"] == 5 and verified


def test_a_background_save_holds_the_state_of_the_call_not_of_later_changes(
        tmp_path: Path) -> None:
    files = NamedFiles(tmp_path)
    weights = torch.zeros(1000)
    state = {"epoch": 1, "model": {"w": weights}}
    flushed: list[int] = []
    files.save_later({"last_checkpoint.pth": state, "last_weights.pt": state["model"]}, step=1,
                     before=lambda: flushed.append(1))
    weights.add_(5.0)  # the training thread goes on at once
    state["epoch"] = 2
    files.wait()
    assert flushed == [1]
    saved, verified = files.load("last_checkpoint.pth")
    assert verified and saved["epoch"] == 1 and float(saved["model"]["w"].sum()) == 0.0
    alone, _ = files.load("last_weights.pt")
    assert float(alone["w"].abs().sum()) == 0.0
    files.save_later({"last_checkpoint.pth": state}, step=2)  # the buffers are reused
    files.close()
    saved, _ = files.load("last_checkpoint.pth")
    assert saved["epoch"] == 2 and float(saved["model"]["w"][0]) == 5.0
    assert files.entries()["last_checkpoint.pth"].step == 2


def test_a_failed_background_save_raises_its_own_error_on_the_next_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = NamedFiles(tmp_path)
    _save(files, 1)

    def full(self: HashingWriter, view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashingWriter, "_write_all", full)
    files.save_later({"last_checkpoint.pth": _state(2)}, step=2)
    with pytest.raises(DiskFullError, match="previous checkpoint .* is intact"):
        files.wait()
    monkeypatch.undo()
    state, _ = files.load("last_checkpoint.pth")
    assert state["epoch"] == 1
    with pytest.raises(TypeError, match="files must be a mapping"):
        files.save_later([("last_checkpoint.pth", 1)], step=3)  # type: ignore[arg-type]
    files.close()


def test_writes_queued_after_a_background_save_land_after_it_in_order(
        tmp_path: Path) -> None:
    files = NamedFiles(tmp_path)
    seen: list[tuple[str, bool]] = []
    files.save_later({"last_checkpoint.pth": _state(1)}, step=1)
    files.write_later(lambda: seen.append(("history", files.exists("last_checkpoint.pth"))))
    files.write_later(lambda: seen.append(("run.json", True)))
    files.wait()
    assert seen == [("history", True), ("run.json", True)]  # after the checkpoint, in order

    def fail() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    files.write_later(fail)
    with pytest.raises(OSError, match="No space left"):  # raised, as it is, by the next save
        files.save_later({"last_checkpoint.pth": _state(2)}, step=2)
    assert files.load("last_checkpoint.pth")[0]["epoch"] == 1  # that save did not start
    with pytest.raises(TypeError, match="job must be a callable"):
        files.write_later("history.csv")  # type: ignore[arg-type]
    copied: list[float] = []
    weights = torch.zeros(3)
    files.copy_later({"w": weights}, lambda state: copied.append(float(state["w"].sum())))
    weights.add_(1.0)  # the copy was taken at the call
    files.close()
    assert copied == [0.0]
