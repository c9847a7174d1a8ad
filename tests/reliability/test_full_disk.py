"""The full-disk campaign: Workflow, fit and a TrainingMonitor loop with a CheckpointManager
training on a small tmpfs that fills up in the middle of the run.

The error must say that the disk is full and where; the previous checkpoint must be intact;
the record keeps what was flushed; the run is marked ``failed``; once space is freed the run
resumes and finishes with the weights of a run that never ran out of space. Mounting needs
root: elsewhere the tests are skipped with the reason (in CI too: the machine is root there).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from loopwise.callbacks import Callback, LoopState
from loopwise.checkpoint.hashing import check_file
from loopwise.checkpoint.manifest import read_manifest
from loopwise.record import RunReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from _workflow_toy import ARGS, ToyTrainer

from loopwise.train.workflow.runner import Workflow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs at ``tmp_path/disk``, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = shutil.which("mount")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                          capture_output=True, text=True, check=False) if mount else None
    if done is None or done.returncode != 0:
        why = "no mount command" if done is None else done.stderr.strip()
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {why}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # busy: detach it anyway


def fill(disk: Path) -> None:
    """Take every byte left on ``disk`` (into ``disk/filler``)."""
    with open(disk / "filler", "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 16384)
            fh.flush()


class FillAfter(Callback):
    """Fills the disk when epoch ``epoch`` ends."""

    def __init__(self, disk: Path, epoch: int) -> None:
        self.disk, self.epoch = disk, epoch

    def on_epoch_end(self, state: LoopState) -> None:
        if state.epoch == self.epoch:
            fill(self.disk)


def _verified(folder: Path) -> list[str]:
    """The files the manifest in ``folder`` lists that verify."""
    return [e.file for e in read_manifest(folder / "manifest.json")
            if any(check_file(folder / e.file, ok) is None for ok in e.accepted)]


def _full_disk_error(exc: BaseException, where: Path) -> None:
    text = str(exc)
    assert "no space left" in text or "disk is full" in text, text
    assert str(where) in text, text


def test_workflow_on_a_full_disk_fails_clearly_keeps_its_past_and_resumes(
        small_disk: Path, tmp_path: Path) -> None:
    reference = Workflow(ToyTrainer(dict(ARGS)), tmp_path / "ref", 4, "exp",
                         system=False).run()
    folder = small_disk / "exp"
    with pytest.raises(OSError) as caught:  # the record's DiskFullError is an OSError
        Workflow(ToyTrainer(dict(ARGS)), small_disk, 4, "exp", system=False,
                 callbacks=[FillAfter(small_disk, 2)]).run()
    _full_disk_error(caught.value, folder)
    assert {"last_checkpoint.pth", "last_weights.pt"} <= set(_verified(folder))
    checkpoint = torch.load(folder / "last_checkpoint.pth", weights_only=True)
    assert checkpoint["epoch"] == 2  # the previous checkpoint, intact
    reader = RunReader(folder)
    assert reader.info["status"] == "failed"
    assert "no space left" in reader.info["error"] or "disk is full" in reader.info["error"]
    # what was flushed is kept, as the uninterrupted run recorded it
    kept, full = reader.series("loss"), RunReader(reference.path).series("loss")
    assert len(kept.values) >= 12 and list(kept.values) == list(full.values)[:len(kept.values)]
    assert list(reader.series("epoch").values)[:1] == [1.0]
    (small_disk / "filler").unlink()
    result = Workflow(ToyTrainer(None), small_disk, 4, "exp", system=False,
                      callbacks=[FillAfter(small_disk, 99)]).run()  # the same callbacks
    assert result.status == "finished" and RunReader(folder).info["status"] == "finished"
    a = torch.load(folder / "last_weights.pt", weights_only=True)
    b = torch.load(reference.path / "last_weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _fit(root: Path, callbacks: list[Any]) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    from loopwise.train.fit.config import TrainingConfig
    from loopwise.train.fit.entry import fit

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(1))
    config = TrainingConfig(epochs=4, patience=0, lr_patience=0, device="cpu", model_name="m",
                            checkpoint_every=1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    return fit(model, loader, loss_fn=torch.nn.MSELoss(), val_loader=loader, config=config,
               root=root, name="exp", callbacks=callbacks, plots=False, progress=False,
               system=False)


def test_fit_on_a_full_disk_fails_clearly_keeps_its_past_and_resumes(
        small_disk: Path, tmp_path: Path) -> None:
    reference = _fit(tmp_path / "ref", [])
    folder = small_disk / "exp"
    with pytest.raises(Exception) as caught:
        _fit(small_disk, [FillAfter(small_disk, 2)])
    _full_disk_error(caught.value, folder)
    # epoch 2's checkpoint found the disk full: epoch 1's (step 8) is intact, and says so
    assert "checkpoint-step00000008.pt (step 8) is intact" in str(caught.value)
    assert _verified(folder / "checkpoints") == ["checkpoint-step00000008.pt"]
    reader = RunReader(folder)
    assert reader.info["status"] == "failed"
    assert "no space left" in reader.info["error"] or "disk is full" in reader.info["error"]
    assert [int(v) for v in reader.series("epoch").values][:1] == [1]
    (small_disk / "filler").unlink()
    result = _fit(small_disk, [FillAfter(small_disk, 99)])  # the same callbacks
    assert result.status == "finished" and RunReader(folder).info["status"] == "finished"
    assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                 reference.model.state_dict().values()))


def test_the_failed_status_is_written_in_place_only_where_it_fits(tmp_path: Path) -> None:
    from loopwise.utils.atomic import write_in_place

    target = tmp_path / "run.json"
    target.write_text('{"status": "running"}\n')
    blocks = target.stat().st_blocks * 512
    assert write_in_place(target, b'{"status": "failed"}\n')
    assert target.read_text() == '{"status": "failed"}\n'  # cut to its new size
    too_long = b"x" * (blocks + 1)  # would need a new block: left as it was
    assert not write_in_place(target, too_long)
    assert target.read_text() == '{"status": "failed"}\n'
