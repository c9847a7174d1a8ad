"""Workflow resume defects: a missing or unverifiable last_checkpoint.pth, a refused resume that
changes nothing, callbacks in another order, a continued finished run, a full disk and a second
process on the same run."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from loopwise.checkpoint.hashing import HashingWriter
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.store import (
    CheckpointError,
    DiskFullError,
    UnverifiedCheckpointError,
)
from loopwise.distributed.sampler import ResumeError
from loopwise.record import RunReader
from loopwise.record.lock import LOCK_FILE, RunLockedError
from loopwise.record.provenance import process_identity, process_start_time
from loopwise.train.workflow.runner import Workflow

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_toy import ARGS, ToyTrainer, toy_callbacks


def _toy() -> ToyTrainer:
    return ToyTrainer(dict(ARGS))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_missing_last_checkpoint_is_refused_not_restarted(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 3, "exp", system=False).run()
    folder = tmp_path / "exp"
    (folder / "last_checkpoint.pth").unlink()
    before = _snapshot(folder)
    with pytest.raises(CheckpointError) as caught:
        Workflow(_toy(), tmp_path, 5, "exp", system=False).run()
    message = str(caught.value)
    assert f"{folder / 'last_checkpoint.pth'} is missing, but " in message
    assert "says 3 epoch(s) were done. Nothing was changed; restore the file" in message
    assert "pass checkpoint=CheckpointManager(...)" in message and "start again" in message
    assert _snapshot(folder) == before  # history.csv rows 1-3 untouched, run.json as it was


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_an_unverifiable_last_checkpoint_prefers_the_verified_copy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpts = tmp_path / "ckpts"
    Workflow(_toy(), tmp_path, 2, "exp", checkpoint=CheckpointManager(ckpts), system=False).run()
    folder = tmp_path / "exp"
    (folder / "manifest.json").unlink()
    _flip(folder / "last_checkpoint.pth")
    capsys.readouterr()
    trainer = _toy()
    result = Workflow(trainer, tmp_path, 3, "exp", checkpoint=CheckpointManager(ckpts),
                      system=False).run()
    assert result.epochs_done == 3
    err = capsys.readouterr().err
    assert f"loopwise: resuming {folder} from {ckpts / 'checkpoint-step00000002.pt'} " \
           "(step 2, verified) (epoch 2, evaluated)" in err
    events = {e.kind: e.message for e in RunReader(folder).events()}
    assert "last_checkpoint.pth cannot be verified" in events["checkpoint_unverified"]
    assert "it was not used; using" in events["checkpoint_unverified"]
    weights = torch.load(folder / "last_weights.pt", weights_only=True)
    assert all(bool(torch.isfinite(w).all()) and float(w.abs().max()) < 100
               for w in weights.values())


def test_an_unverifiable_last_checkpoint_is_an_error_unless_opted_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    folder = tmp_path / "exp"
    (folder / "manifest.json").write_text("{broken")
    before = _snapshot(folder)
    with pytest.raises(UnverifiedCheckpointError) as caught:
        Workflow(_toy(), tmp_path, 3, "exp", system=False).run()
    message = str(caught.value)
    assert "last_checkpoint.pth cannot be verified" in message
    assert "Nothing was changed" in message and "allow_unverified=True" in message
    assert _snapshot(folder) == before
    with pytest.raises(TypeError, match="allow_unverified must be True or False"):
        Workflow(_toy(), tmp_path, 3, "exp", allow_unverified=1)  # type: ignore[arg-type]
    result = Workflow(_toy(), tmp_path, 3, "exp", allow_unverified=True, system=False).run()
    assert result.epochs_done == 3
    assert f"from {folder / 'last_checkpoint.pth'} (unverified)" in capsys.readouterr().err
    kinds = [e.kind for e in RunReader(folder).events()]
    assert "checkpoint_unverified" in kinds


def test_callbacks_in_reversed_order_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", callbacks=toy_callbacks(), system=False).run()
    folder = tmp_path / "exp"
    before = _snapshot(folder)
    with pytest.raises(ResumeError, match=r"callbacks are in another order than the "
                       r"checkpoint's: saved KillAtEnd, EarlyStopping, ReduceLROnPlateau, "
                       r"LearningRateMonitor, TrendWatcher; given TrendWatcher, "):
        Workflow(_toy(), tmp_path, 2, "exp", callbacks=list(reversed(toy_callbacks())),
                 system=False).run()
    assert _snapshot(folder) == before
    assert RunReader(folder).info["status"] == "finished"


class CountingToy(ToyTrainer):
    evaluated: list[int]

    def evaluate(self) -> dict[str, float]:
        self.evaluated.append(self.run.global_step)
        return super().evaluate()


def test_continuing_a_finished_run_does_not_redo_its_last_epoch(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    trainer = CountingToy(dict(ARGS))
    trainer.evaluated = []
    result = Workflow(trainer, tmp_path, 4, "exp", system=False).run()
    assert result.epochs_done == 4
    assert trainer.evaluated == [36, 48]  # epochs 3 and 4 only (12 steps an epoch)
    reader = RunReader(tmp_path / "exp")
    val = reader.series("epoch/val_loss")
    assert list(val.epochs) == [1, 2, 3, 4] and list(val.steps) == [12, 24, 36, 48]
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0, 4.0]


def test_a_full_disk_says_so_and_names_the_intact_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()

    def full(self: HashingWriter, view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HashingWriter, "_write_all", full)
    folder = tmp_path / "exp"
    with pytest.raises(DiskFullError) as caught:
        Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    message = str(caught.value)
    assert f"the disk is full: writing last_checkpoint.pth in {folder}" in message
    assert f"the previous checkpoint {folder / 'last_checkpoint.pth'}" in message
    assert "is intact" in message and "inline_container" not in message
    monkeypatch.undo()
    result = Workflow(_toy(), tmp_path, 2, "exp", system=False).run()  # space again: resumes
    assert result.epochs_done == 2


def test_a_second_process_cannot_resume_a_run_being_written(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()
    folder = tmp_path / "exp"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        identity: dict[str, Any] = dict(process_identity())
        identity.update(pid=holder.pid, pid_start=process_start_time(holder.pid))
        (folder / LOCK_FILE).write_text(json.dumps(identity))
        before = _snapshot(folder)
        with pytest.raises(RunLockedError, match=rf"process {holder.pid} is writing it"):
            Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
        assert _snapshot(folder) == before
    finally:
        holder.kill()
        holder.wait()
    result = Workflow(_toy(), tmp_path, 2, "exp", system=False).run()  # the dead holder's lock
    assert result.epochs_done == 2


def test_the_manager_cannot_share_the_experiment_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is the experiment folder itself; give it a folder of "
                                         "its own"):
        Workflow(_toy(), tmp_path, 1, "exp", checkpoint=CheckpointManager(tmp_path / "exp"),
                 system=False).run()
