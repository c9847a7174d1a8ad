"""CheckpointManager: keep-k policy, best selection and backup, corruption fallback, manifest
loss, async saves, argument errors."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import loopwise
from loopwise.checkpoint import CheckpointError, CheckpointManager
from loopwise.checkpoint import store as checkpoint_store


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Any = None) -> None:
        self.items.append((kind, level, message))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.items]


def _state(step: int) -> dict[str, Any]:
    return {"w": torch.full((4, 4), float(step)), "step": step}


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("checkpoint-step*.pt"))


def test_public_name() -> None:
    assert loopwise.CheckpointManager is CheckpointManager


def test_keeps_the_last_k(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 6):
        path = mgr.save(_state(step), step=step)
        assert path.exists()
    assert [c.step for c in mgr.list()] == [4, 5]
    assert _files(tmp_path) == ["checkpoint-step00000004.pt", "checkpoint-step00000005.pt"]
    assert mgr.load_latest()["step"] == 5
    assert mgr.latest() is not None and mgr.latest().step == 5


def test_a_dropped_file_is_recycled_by_the_next_save(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=1, keep_best=0)
    mgr.save(_state(1), step=1)
    mgr.save(_state(2), step=2)  # step 1 falls out of the keep set: kept aside as the spare
    spare = tmp_path / ".spare-checkpoint"
    inode = spare.stat().st_ino
    assert _files(tmp_path) == ["checkpoint-step00000002.pt"]
    third = mgr.save({"tiny": 1}, step=3)  # written over the spare, cut to its own size
    assert third.stat().st_ino == inode
    assert [c.step for c in mgr.list()] == [3]
    assert all(c.ok for c in mgr.verify())
    assert mgr.load_latest() == {"tiny": 1}
    assert spare.exists() and _files(tmp_path) == ["checkpoint-step00000003.pt"]


def test_recycle_false_deletes_dropped_files(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=1, keep_best=0, recycle=False)
    for step in (1, 2, 3):
        mgr.save(_state(step), step=step)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-step00000003.pt",
                                                          "manifest.json"]


def test_keeps_the_best_k_besides_the_last(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_loss", keep_last=1, keep_best=2)
    losses = {1: 0.9, 2: 0.3, 3: 0.5, 4: 0.2, 5: 0.8, 6: 0.7}
    for step, loss in losses.items():
        mgr.save(_state(step), step=step, metrics={"val_loss": loss})
    assert [c.step for c in mgr.list()] == [2, 4, 6]  # best two (0.2, 0.3) and the last
    best = mgr.best()
    assert best is not None and best.step == 4 and best.metrics["val_loss"] == 0.2
    assert mgr.load_best()["step"] == 4


def test_max_mode_and_ties_keep_the_first(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="acc", mode="max", keep_last=1, keep_best=1)
    for step, acc in [(1, 0.5), (2, 0.9), (3, 0.9), (4, 0.1)]:
        mgr.save(_state(step), step=step, metrics={"acc": acc})
    assert [c.step for c in mgr.list()] == [2, 4]


def test_accuracy_best_is_the_highest_by_default(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_acc", keep_last=1, keep_best=1,
                            backup_dir=tmp_path / "best")
    for step, acc in [(1, 0.5), (2, 0.9), (3, 0.7)]:
        mgr.save(_state(step), step=step, metrics={"val_acc": acc})
    assert mgr.mode == "max"
    assert [c.step for c in mgr.list()] == [2, 3]
    best = mgr.best()
    assert best is not None and best.step == 2
    assert [p.name for p in (tmp_path / "best").glob("*.pt")] == ["checkpoint-step00000002.pt"]
    loss = CheckpointManager(tmp_path / "l", monitor="val_loss", keep_last=1, keep_best=1)
    assert loss.mode == "min"


def test_nan_metric_is_never_best(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_loss", keep_last=1, keep_best=1)
    mgr.save(_state(1), step=1, metrics={"val_loss": 1.0})
    mgr.save(_state(2), step=2, metrics={"val_loss": float("nan")})
    mgr.save(_state(3), step=3, metrics={"val_loss": 2.0})
    assert mgr.best() is not None and mgr.best().step == 1
    assert [c.step for c in mgr.list()] == [1, 3]


def test_best_is_copied_to_backup_dir(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    mgr = CheckpointManager(tmp_path / "ckpt", monitor="val_loss", keep_last=1, keep_best=1,
                            backup_dir=backup)
    mgr.save(_state(1), step=1, metrics={"val_loss": 0.5})
    mgr.save(_state(2), step=2, metrics={"val_loss": 0.4})
    mgr.save(_state(3), step=3, metrics={"val_loss": 0.6})
    assert _files(backup) == ["checkpoint-step00000002.pt"]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["entries"][0]["step"] == 2
    assert (backup / "checkpoint-step00000002.pt").read_bytes() == \
        (tmp_path / "ckpt" / "checkpoint-step00000002.pt").read_bytes()


def test_a_reopened_manager_continues_from_the_manifest(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_loss", keep_last=2, keep_best=1)
    mgr.save(_state(1), step=1, metrics={"val_loss": 0.1})
    mgr.save(_state(2), step=2, metrics={"val_loss": 0.5})
    again = CheckpointManager(tmp_path, monitor="val_loss", keep_last=2, keep_best=1)
    again.save(_state(3), step=3, metrics={"val_loss": 0.6})
    again.save(_state(4), step=4, metrics={"val_loss": 0.7})
    assert [c.step for c in again.list()] == [1, 3, 4]


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=3)
    mgr.save(_state(1), step=1)
    mgr.save({"w": torch.zeros(1), "step": 99}, step=1)
    assert [c.step for c in mgr.list()] == [1]
    assert mgr.load_latest()["step"] == 99


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) - 100]))
    elif how == "bit-flipped":
        data[len(data) // 3] ^= 0x10
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "bit-flipped", "empty"])
def test_corrupt_latest_is_reported_and_the_previous_good_one_used(tmp_path: Path,
                                                                    how: str) -> None:
    events = Events()
    mgr = CheckpointManager(tmp_path, keep_last=3, run=events)
    for step in (1, 2, 3):
        mgr.save(_state(step), step=step)
    _corrupt(tmp_path / "checkpoint-step00000003.pt", how)
    state = mgr.load_latest()
    assert state is not None and state["step"] == 2
    assert events.kinds() == ["checkpoint_corrupt"]
    assert "checkpoint-step00000003.pt" in events.items[0][2]
    assert events.items[0][1] == "warning"
    checks = mgr.verify()
    assert [c.ok for c in checks] == [True, True, False]
    assert checks[2].problem is not None


def test_every_checkpoint_corrupt_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=2)
    mgr.save(_state(1), step=1)
    mgr.save(_state(2), step=2)
    for path in tmp_path.glob("checkpoint-step*.pt"):
        _corrupt(path, "empty")
    with pytest.raises(CheckpointError, match="no usable checkpoint in"):
        mgr.load_latest()


def test_empty_folder_loads_none(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path / "new")
    assert mgr.load_latest() is None
    assert mgr.list() == [] and mgr.best() is None and mgr.verify() == []


def test_missing_manifest_is_rebuilt_from_the_files(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_loss", keep_last=3)
    for step, loss in [(1, 0.5), (2, 0.2), (3, 0.4)]:
        mgr.save(_state(step), step=step, metrics={"val_loss": loss})
    (tmp_path / "manifest.json").unlink()
    _corrupt(tmp_path / "checkpoint-step00000001.pt", "truncated")
    events = Events()
    again = CheckpointManager(tmp_path, monitor="val_loss", keep_last=3, run=events)
    with caplog.at_level(logging.WARNING):
        assert again.load_latest()["step"] == 3
    assert [c.step for c in again.list()] == [2, 3]
    assert again.best() is not None and again.best().step == 2
    assert events.kinds() == ["checkpoint_corrupt", "manifest_rebuilt"]
    assert "rebuilt it from 2 of 3 checkpoint files" in events.items[1][2]
    assert (tmp_path / "manifest.json").exists()
    assert all(c.ok for c in again.verify())


def test_corrupt_manifest_is_kept_aside_and_rebuilt(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=2)
    mgr.save(_state(1), step=1)
    (tmp_path / "manifest.json").write_text('{"version": 1, "entr')
    again = CheckpointManager(tmp_path, keep_last=2, run=Events())
    assert again.load_latest()["step"] == 1
    assert len(list(tmp_path.glob("manifest.json.corrupt-*"))) == 1


class FakeClock:
    """Unix seconds that move only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_times_come_from_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    mgr = CheckpointManager(tmp_path, keep_last=3, clock=clock)
    mgr.save(_state(1), step=1)
    clock.now += 3600.0
    mgr.save(_state(2), step=2)
    assert [c.time for c in mgr.list()] == [1_700_000_000.0, 1_700_003_600.0]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["time"] for e in manifest["entries"]] == [1_700_000_000.0, 1_700_003_600.0]
    raw = torch.load(tmp_path / "checkpoint-step00000002.pt", weights_only=True)
    assert raw["time"] == 1_700_003_600.0
    (tmp_path / "manifest.json").write_text('{"version": 1, "entr')
    clock.now = 1_800_000_000.0
    again = CheckpointManager(tmp_path, keep_last=3, run=Events(), clock=clock)
    assert [c.step for c in again.list()] == [1, 2]
    assert (tmp_path / "manifest.json.corrupt-1800000000").is_file()
    with pytest.raises(TypeError, match="clock must be a callable returning Unix seconds"):
        CheckpointManager(tmp_path, clock=1.0)  # type: ignore[arg-type]


def test_leftover_temp_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".checkpoint-step00000001.pt.abc.tmp").write_bytes(b"partial")
    CheckpointManager(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))


def test_async_save_snapshots_then_writes_in_the_background(tmp_path: Path) -> None:
    model = torch.nn.Linear(50, 50)
    with CheckpointManager(tmp_path, keep_last=2, async_save=True) as mgr:
        assert mgr.async_save
        mgr.save({"model": model.state_dict()}, step=1)
        expected = model.weight.detach().clone()
        with torch.no_grad():
            model.weight.zero_()  # training goes on while the write runs
        mgr.wait()
        assert torch.equal(mgr.load_latest()["model"]["weight"], expected)
        mgr.save({"model": model.state_dict()}, step=2)
    assert [c.step for c in mgr.list()] == [1, 2]
    assert torch.equal(mgr.load_latest()["model"]["weight"], torch.zeros(50, 50))


def test_async_save_error_surfaces_on_the_next_call(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = CheckpointManager(tmp_path, async_save=True)
    gate = threading.Event()

    def failing(path: Any, obj: Any, **kwargs: Any) -> Any:
        gate.wait(5)
        raise OSError("No space left on device")

    monkeypatch.setattr("loopwise.checkpoint.manager.save_file", failing)
    mgr.save(_state(1), step=1)  # returns at once
    gate.set()
    with pytest.raises(CheckpointError, match="No space left on device"):
        mgr.save(_state(2), step=2)
    monkeypatch.setattr("loopwise.checkpoint.manager.save_file", checkpoint_store.save_file)
    mgr.save(_state(3), step=3)
    mgr.close()
    assert [c.step for c in mgr.list()] == [3]


def test_async_error_surfaces_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = CheckpointManager(tmp_path, async_save=True)

    def failing(path: Any, obj: Any, **kwargs: Any) -> Any:
        raise OSError("I/O error")

    monkeypatch.setattr("loopwise.checkpoint.manager.save_file", failing)
    mgr.save(_state(1), step=1)
    with pytest.raises(CheckpointError, match="I/O error"):
        mgr.close()


def test_loading_objects_needs_allow_pickle(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path)
    mgr.save({"path": Path("x")}, step=1)
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        mgr.load_latest()
    with pytest.warns(UserWarning, match="arbitrary code"):
        assert mgr.load_latest(allow_pickle=True) == {"path": Path("x")}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"keep_last": -1}, ValueError, "keep_last must be an int >= 0"),
    ({"keep_best": 1.5}, TypeError, "keep_best must be an int, got float"),
    ({"keep_last": 0}, ValueError, "would keep nothing"),
    ({"mode": "up"}, ValueError, "mode must be one of 'min', 'max', 'auto'; got 'up'"),
    ({"monitor": ""}, ValueError, "monitor must be a metric name"),
    ({"async_save": "yes"}, TypeError, "async_save must be True or False"),
    ({"recycle": 1}, TypeError, "recycle must be True or False"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], error: type[Exception],
                       match: str) -> None:
    with pytest.raises(error, match=match):
        CheckpointManager(tmp_path, **kwargs)


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create checkpoint folder"):
        CheckpointManager(blocker / "ckpt")


def test_bad_save_calls(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, monitor="val_loss")
    with pytest.raises(TypeError, match="state must be a dict"):
        mgr.save([1, 2], step=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        mgr.save({}, step=-1)
    with pytest.raises(KeyError, match="monitors 'val_loss' but save\\(\\) got metrics: loss"):
        mgr.save({}, step=1, metrics={"loss": 1.0})
    with pytest.raises(TypeError, match=r"metric 'val_loss' must be a real number"):
        mgr.save({}, step=1, metrics={"val_loss": "low"})
    with pytest.raises(ValueError, match="load_best\\(\\) needs"):
        CheckpointManager(tmp_path / "b").load_best()
    assert mgr.list() == []
