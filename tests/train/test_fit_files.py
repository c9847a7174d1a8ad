"""fit's files in the one checkpoint storage: <name>_best_model.pth verified on every load (also
when a repeated fit is skipped), a full disk said as such, one writer per run."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.checkpoint.hashing import HashingWriter
from loopwise.checkpoint.store import CheckpointError, DiskFullError
from loopwise.record.lock import LOCK_FILE, RunLockedError
from loopwise.record.provenance import process_identity, process_start_time
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit

QUIET: dict[str, Any] = {"plots": False, "progress": False, "system": False}


def _data() -> tuple[DataLoader[Any], DataLoader[Any]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x.sum(dim=1, keepdim=True)
    return (DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                       generator=torch.Generator().manual_seed(1)),
            DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16))


def _config(**kw: Any) -> TrainingConfig:
    return TrainingConfig(**{"epochs": 2, "patience": 0, "lr_patience": 0, "device": "cpu",
                             "learning_rate": 0.01, "model_name": "m", **kw})


def _fit(tmp_path: Path, **kw: Any) -> Any:
    train, val = _data()
    return fit(torch.nn.Linear(4, 1), train, loss_fn=torch.nn.MSELoss(), val_loader=val,
               config=_config(**kw), root=tmp_path, name="exp", **QUIET)


def test_the_best_model_is_listed_in_the_manifest(tmp_path: Path) -> None:
    _fit(tmp_path)
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert [e["file"] for e in manifest["entries"]] == ["m_best_model.pth"]


def test_a_bit_flipped_best_model_is_refused_when_a_repeated_fit_is_skipped(
        tmp_path: Path) -> None:
    first = _fit(tmp_path)
    best = tmp_path / "exp" / "m_best_model.pth"
    data = bytearray(best.read_bytes())
    at = bytes(data).find(first.model.weight.detach().numpy().tobytes())
    data[at + 3] ^= 0x40  # an exponent bit of a weight: torch.load accepts the file
    best.write_bytes(bytes(data))
    assert not torch.equal(torch.load(best, weights_only=True)["weight"], first.model.weight)
    with pytest.raises(CheckpointError) as caught:
        _fit(tmp_path)
    message = str(caught.value)
    assert f"checkpoint {best} is unusable: its xxh3_128 hash does not match" in message
    assert "the best weights cannot be trusted" in message and "force=True" in message


def test_a_full_disk_says_so_and_names_the_intact_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = {"n": 0}
    original = HashingWriter._write_all

    def fills_up(self: HashingWriter, view: memoryview) -> None:
        written["n"] += 1
        if written["n"] > 3:  # the first files fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, view)

    monkeypatch.setattr(HashingWriter, "_write_all", fills_up)
    with pytest.raises(DiskFullError) as caught:
        _fit(tmp_path, epochs=3, checkpoint_every=1)
    message = str(caught.value)
    assert message.startswith("the disk is full: writing ")
    assert str(tmp_path / "exp") in message and "No space left on device" in message
    assert "is intact" in message and "inline_container" not in message


def test_a_second_process_cannot_resume_a_fit_being_written(tmp_path: Path) -> None:
    _fit(tmp_path)
    folder = tmp_path / "exp"
    (folder / "m_results.json").unlink()  # as if the first process were still training
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        identity = dict(process_identity(), pid=holder.pid,
                        pid_start=process_start_time(holder.pid))
        (folder / LOCK_FILE).write_text(json.dumps(identity))
        with pytest.raises(RunLockedError, match=rf"process {holder.pid} is writing it"):
            _fit(tmp_path)
    finally:
        holder.kill()
        holder.wait()


def test_reference_named_checkpoints_are_verified_on_load(tmp_path: Path) -> None:
    from loopwise.checkpoint.store import CorruptCheckpointError
    from loopwise.checkpoint.weights import load_state_dict_safely

    _fit(tmp_path, epochs=3, checkpoint_every=1, keep_checkpoints=2)
    folder = tmp_path / "exp"
    named = sorted(p.name for p in folder.glob("m_checkpoint_*.pth"))
    assert named == ["m_checkpoint_2.pth", "m_checkpoint_3.pth"]  # the first rotated out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(e["file"] for e in manifest["entries"]) == [
        "m_best_model.pth", "m_checkpoint_2.pth", "m_checkpoint_3.pth"]
    # one manifest owns each file's hash: the named ones refer to the manager's entries
    owned = {e["file"]: e for e in json.loads(
        (folder / "checkpoints" / "manifest.json").read_text())["entries"]}
    for entry in manifest["entries"]:
        if entry["file"].startswith("m_checkpoint_"):
            assert "hash" not in entry and entry["source"].startswith("checkpoints/")
            assert entry["source"].removeprefix("checkpoints/") in owned
    assert set(load_state_dict_safely(folder / "m_checkpoint_3.pth")) == {"weight", "bias"}
    path = folder / "m_checkpoint_3.pth"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="m_checkpoint_3.pth is unusable"):
        load_state_dict_safely(path)
    shutil.copy(folder / "m_checkpoint_2.pth", path)  # other whole bytes: refused too
    with pytest.raises(CorruptCheckpointError, match="m_checkpoint_3.pth is unusable"):
        load_state_dict_safely(path)


SCRIPT = """
import sys, time, torch
from pathlib import Path
from torch.utils.data import DataLoader, TensorDataset
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit

root, release = Path(sys.argv[1]), Path(sys.argv[2])
x = torch.randn(32, 4)
def loss_fn(out, y):
    while not release.exists():  # hold the run until the test says so
        time.sleep(0.01)
    return torch.nn.functional.mse_loss(out, y)
try:
    fit(torch.nn.Linear(4, 1), DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8),
        loss_fn=loss_fn, config=TrainingConfig(epochs=1, patience=0, lr_patience=0,
        device="cpu", model_name="m"), root=root, name="exp", plots=False, progress=False,
        system=False)
except Exception as exc:
    print(type(exc).__name__ + ": " + str(exc))
    sys.exit(3)
"""


def test_two_fits_of_the_same_name_at_once(tmp_path: Path) -> None:
    release = tmp_path / "release"
    first = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), str(release)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "exp" / LOCK_FILE
        while not (lock.is_file() and lock.stat().st_size):
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        second = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(release)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert f"RunLockedError: the run {tmp_path / 'exp'} is in use: process {first.pid} is " \
               "writing it" in second.stdout
        assert "FileNotFoundError" not in second.stdout + second.stderr
    finally:
        release.write_text("go")
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    info = json.loads((tmp_path / "exp" / "run.json").read_text())
    assert info["status"] == "finished" and info["resumes"] == []  # the refusal changed nothing
