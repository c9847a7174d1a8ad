"""Workflow: experiment folder, history, resume (in-process and after SIGKILL, bit-exact at
epoch and mid-epoch level), callbacks, CheckpointManager fallback, and bad input."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import loopwise
import loopwise.train.workflow.trainer
from loopwise.callbacks import Callback, EarlyStopping, ReduceLROnPlateau
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.store import CheckpointError
from loopwise.distributed.sampler import ResumeError
from loopwise.record import RunReader
from loopwise.train.workflow.runner import Workflow

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_toy import ARGS, ToyTrainer, toy_callbacks

TOY = Path(__file__).parent / "_workflow_toy.py"


def _toy(args: dict[str, Any] | None = None) -> ToyTrainer:
    return ToyTrainer(dict(ARGS) if args is None else args)


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_new_experiment_layout_and_history(tmp_path: Path) -> None:
    assert loopwise.Workflow is Workflow
    result = Workflow(_toy(), tmp_path, 3, "exp", system=False).run()
    folder = tmp_path / "exp"
    assert result.status == "finished" and result.epochs_done == 3 and result.path == folder
    for name in ("run.json", "config.json", "store.sqlite", "args.json", "history.csv",
                 "last_checkpoint.pth", "last_weights.pt", "manifest.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "args.json").read_text()) == ARGS
    rows = _rows(folder)
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "train_seconds", "eval_seconds"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["train_seconds"]) > 0 and float(r["eval_seconds"]) > 0 for r in rows)
    reader = RunReader(folder)
    assert reader.info["status"] == "finished" and reader.config() == ARGS
    # at the global step where each epoch ended (12 batches an epoch), with its epoch
    val = reader.series("epoch/val_loss")
    assert list(val.steps) == [12, 24, 36] and list(val.epochs) == [1, 2, 3]
    weights = torch.load(folder / "last_weights.pt", weights_only=True)
    trainer = _toy()
    trainer.setup()
    trainer.model.load_state_dict(weights)  # the file is a plain model state_dict
    checkpoint = torch.load(folder / "last_checkpoint.pth", weights_only=True)
    # the end state: a later run with more epochs continues after epoch 3, not inside it
    assert checkpoint["epoch"] == 3 and checkpoint["phase"] == "evaluated"
    assert {"model", "optimizer", "scheduler", "rng", "callbacks", "monitor"} <= set(checkpoint)


def test_generated_name(tmp_path: Path) -> None:
    result = Workflow(_toy(), tmp_path, 1, system=False).run()
    assert result.path.parent == tmp_path and (result.path / "args.json").exists()


def test_finished_experiment_says_so_and_returns(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    before = (tmp_path / "exp" / "last_checkpoint.pth").read_bytes()

    class NoSetup(ToyTrainer):
        def setup(self) -> None:
            raise AssertionError("setup() must not run for a finished experiment")

    with caplog.at_level(logging.WARNING, logger="loopwise.train.workflow.runner"):
        result = Workflow(NoSetup(None), tmp_path, 2, "exp", system=False).run()
    assert result.status == "already_finished" and result.epochs_done == 2
    assert len(result.history) == 2
    assert "already finished (2 epochs)" in caplog.text
    assert (tmp_path / "exp" / "last_checkpoint.pth").read_bytes() == before


def test_resume_loads_args_and_continues_to_more_epochs(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    trainer = ToyTrainer(None)  # no args given: they come from args.json
    result = Workflow(trainer, tmp_path, 4, "exp", system=False).run()
    assert trainer.args == ARGS
    assert result.epochs_done == 4 and [r["epoch"] for r in _rows(tmp_path / "exp")] == \
        ["1", "2", "3", "4"]
    Workflow(_toy(), tmp_path, 4, "ref", system=False).run()
    a = torch.load(tmp_path / "exp" / "last_weights.pt", weights_only=True)
    b = torch.load(tmp_path / "ref" / "last_weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    events = [e.kind for e in RunReader(tmp_path / "exp").events()]
    assert "resumed" in events and "checkpoint_loaded" in events


def _run_toy(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, str(TOY), str(root), name, "4", *extra],
                          capture_output=True, text=True, timeout=240, env=env, check=False)


def _same_weights(a: Path, b: Path) -> bool:
    wa = torch.load(a / "last_weights.pt", weights_only=True)
    wb = torch.load(b / "last_weights.pt", weights_only=True)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _metrics(folder: Path) -> list[tuple[str, str, str]]:
    return [(r["epoch"], r["train_loss"], r["val_loss"]) for r in _rows(folder)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    done = _run_toy(root, "ref", "--every", "5")
    assert done.returncode == 0, done.stderr
    return root / "ref"


@pytest.mark.parametrize("kill", [
    "epoch:2:end",        # after epoch 2 completed (checkpoint, history, callbacks)
    "epoch:2:evaluate",   # checkpoint of epoch 2 written, evaluation interrupted
    "batch:3:7",          # mid-epoch: last mid-epoch checkpoint after batch 5
    "batch:2:12",         # after the last batch of epoch 2, before its epoch checkpoint
])
def test_sigkill_and_resume_is_bit_identical(tmp_path: Path, reference: Path,
                                             kill: str) -> None:
    killed = _run_toy(tmp_path, "exp", "--every", "5", "--kill", kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert RunReader(tmp_path / "exp").info["status"] == "crashed"
    resumed = _run_toy(tmp_path, "exp", "--every", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert _same_weights(reference, tmp_path / "exp")
    assert _metrics(reference) == _metrics(tmp_path / "exp")
    ref_ckpt = torch.load(reference / "last_checkpoint.pth", weights_only=True)
    ckpt = torch.load(tmp_path / "exp" / "last_checkpoint.pth", weights_only=True)
    assert ckpt["callbacks"]["ReduceLROnPlateau"] == ref_ckpt["callbacks"]["ReduceLROnPlateau"]
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == \
        ref_ckpt["optimizer"]["param_groups"][0]["lr"]
    assert ckpt["global_step"] == ref_ckpt["global_step"] == 48


@pytest.mark.parametrize("kills", [("commit:5", "commit:1"), ("commit:4", "commit:2")])
def test_sigkill_inside_checkpoint_commits_twice_is_bit_identical(
        tmp_path: Path, reference: Path, kills: tuple[str, str]) -> None:
    # two crashes in a row inside the commit window (between manifest and rename)
    for kill in kills:
        killed = _run_toy(tmp_path, "exp", "--every", "5", "--kill", kill)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _run_toy(tmp_path, "exp", "--every", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert _same_weights(reference, tmp_path / "exp")
    assert _metrics(reference) == _metrics(tmp_path / "exp")


@pytest.fixture(scope="module")
def reference_no_end_hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference-no-end-hook")
    done = _run_toy(root, "ref", "--no-end-hook")
    assert done.returncode == 0, done.stderr
    return root / "ref"


@pytest.mark.parametrize("kill", [
    "batch:3:2",          # epoch 2's checkpoint, history.csv and run.json may be in flight
    "epoch:3:train",      # epoch 3 trained, before its checkpoint
    "epoch:2:evaluate",   # epoch 2's checkpoint in flight or written, evaluation interrupted
])
def test_sigkill_while_the_epoch_files_are_written_leaves_them_whole_and_resumes_exactly(
        tmp_path: Path, reference_no_end_hook: Path, kill: str) -> None:
    from loopwise.checkpoint.named import NamedFiles
    from loopwise.train.workflow.experiment import History

    killed = _run_toy(tmp_path, "exp", "--no-end-hook", "--kill", kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = tmp_path / "exp"
    history = History(folder / "history.csv")
    history.load()  # whole rows, a whole file: this version or the one before
    assert [r["epoch"] for r in history.rows] in ([1.0], [1.0, 2.0])
    progress = json.loads((folder / "run.json").read_text())["workflow"]
    assert progress["epochs_done"] in (1, 2) and progress["finished"] is False
    saved = NamedFiles(folder)
    saved.check("last_checkpoint.pth")  # verified against the manifest
    saved.check("last_weights.pt")
    resumed = _run_toy(tmp_path, "exp", "--no-end-hook")
    assert resumed.returncode == 0, resumed.stderr
    assert _same_weights(reference_no_end_hook, folder)
    assert _metrics(reference_no_end_hook) == _metrics(folder)
    assert json.loads((folder / "run.json").read_text())["workflow"]["epochs_done"] == 4


class _SeesEpochFiles(Callback):
    """Reads history.csv and the checkpoint at each epoch's end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: list[tuple[int, str, int]] = []

    def on_epoch_end(self, state: Any) -> None:
        last = _rows(self.folder)[-1]["epoch"]
        saved = torch.load(self.folder / "last_checkpoint.pth", weights_only=True)
        self.seen.append((state.epoch, last, saved["epoch"]))


def test_epoch_files_are_complete_when_the_run_ends_and_at_each_epoch_end_hook(
        tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 3, "quiet", system=False).run()  # no on_epoch_end: all in the
    folder = tmp_path / "quiet"  # background, and all on disk once run() returns
    assert [r["epoch"] for r in _rows(folder)] == ["1", "2", "3"]
    info = json.loads((folder / "run.json").read_text())
    assert info["workflow"] == {"epochs_done": 3, "epochs": 3, "finished": True,
                                "stopped": None}
    assert info["status"] == "finished"
    assert torch.load(folder / "last_checkpoint.pth", weights_only=True)["epoch"] == 3
    hook = _SeesEpochFiles(tmp_path / "hooked")
    Workflow(_toy(), tmp_path, 3, "hooked", callbacks=[hook], system=False).run()
    assert hook.seen == [(1, "1", 1), (2, "2", 2), (3, "3", 3)]  # this epoch's, on disk


def test_mid_epoch_resume_does_not_load_the_skipped_batches(tmp_path: Path) -> None:
    killed = _run_toy(tmp_path, "exp", "--every", "4", "--kill", "batch:2:10")
    assert killed.returncode == -signal.SIGKILL
    state = torch.load(tmp_path / "exp" / "last_checkpoint.pth", weights_only=True)
    # saves run in the background: the kill 2 batches after the one at batch 8 may find it
    # still being written, and then the one at batch 4 is the checkpoint on disk
    done = state["loop"]["batches_done"]
    assert state["phase"] == "in_epoch" and done in (4, 8)

    class Counting(ToyTrainer):
        def setup(self) -> None:
            super().setup()
            dataset = self.loader.dataset
            self.fetched = 0
            original = dataset.__class__.__getitem__

            def counted(ds: Any, i: int) -> Any:
                self.fetched += 1
                return original(ds, i)

            dataset.__class__ = type("CountedDataset", (dataset.__class__,),
                                     {"__getitem__": counted})

    trainer = Counting(None)
    Workflow(trainer, tmp_path, 2, "exp", checkpoint_every=4, callbacks=toy_callbacks(),
             system=False).run()
    # the rest of epoch 2 (12 batches of 8 samples), not the batches already trained on
    assert trainer.fetched == (12 - done) * 8


def test_callbacks_stop_training_and_their_state_is_checkpointed(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0,
                            restore_best_weights=True)
    result = Workflow(_toy(), tmp_path, 5, "exp", callbacks=[stopper], system=False).run()
    assert result.status == "stopped" and result.epochs_done == 2
    assert result.stop is not None and result.stop.source == "EarlyStopping"
    weights = torch.load(tmp_path / "exp" / "last_weights.pt", weights_only=True)
    assert stopper.best_weights is not None  # epoch 1's weights, put back when stopping
    assert all(torch.equal(weights[k], stopper.best_weights[k]) for k in weights)
    saved = torch.load(tmp_path / "exp" / "last_checkpoint.pth", weights_only=True)
    assert saved["callbacks"]["EarlyStopping"]["stopped_epoch"] == 2
    info = RunReader(tmp_path / "exp").info
    assert info["status"] == "finished" and info["workflow"]["stopped"].startswith("val_loss")
    events = {e.kind: e.message for e in RunReader(tmp_path / "exp").events()}
    assert events["stopped"].startswith("training stopped by EarlyStopping: val_loss has not")
    again = Workflow(_toy(), tmp_path, 5, "exp", callbacks=[EarlyStopping(patience=0)],
                     system=False).run()
    assert again.status == "already_finished"


def test_reduce_lr_acts_on_the_trainers_optimizer(tmp_path: Path) -> None:
    trainer = _toy()
    Workflow(trainer, tmp_path, 2, "exp", system=False,
             callbacks=[ReduceLROnPlateau(patience=0, factor=0.1, min_delta=100.0)]).run()
    # epoch 1 sets the first best; epoch 2 is no gain of 100: one cut by 0.1. StepLR
    # (step_size=2, gamma=0.5) halved it after epoch 2's training.
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5 * 0.1)


def test_checkpoint_manager_keeps_epochs_and_rescues_a_corrupt_last(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path / "ckpts", monitor="val_loss", keep_last=1)
    Workflow(_toy(), tmp_path, 3, "exp", checkpoint=manager, system=False).run()
    assert len(manager.list()) in (1, 2)
    assert manager.latest() is not None and manager.latest().step == 3
    (tmp_path / "exp" / "last_checkpoint.pth").write_bytes(b"garbage")
    result = Workflow(_toy(), tmp_path, 4, "exp",
                      checkpoint=CheckpointManager(tmp_path / "ckpts", monitor="val_loss",
                                                   keep_last=1), system=False).run()
    assert result.epochs_done == 4
    kinds = [e.kind for e in RunReader(tmp_path / "exp").events()]
    assert "checkpoint_corrupt" in kinds


def test_corrupt_last_checkpoint_without_a_manager_is_an_error(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()
    path = tmp_path / "exp" / "last_checkpoint.pth"
    path.write_bytes(path.read_bytes()[:-10])
    before = {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir()}
    with pytest.raises(CheckpointError, match="last_checkpoint.pth is unusable: the file has "
                                              ".* Nothing was changed"):
        Workflow(_toy(), tmp_path, 3, "exp", system=False).run()
    # as it says: run.json still says finished, no resume entry, no file touched
    assert RunReader(tmp_path / "exp").info["status"] == "finished"
    assert RunReader(tmp_path / "exp").info["resumes"] == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir()} == before


def test_changed_model_on_resume_is_a_clear_error(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()

    class Wider(ToyTrainer):
        def setup(self) -> None:
            super().setup()
            self.model[0] = torch.nn.Linear(8, 32)
            self.model[3] = torch.nn.Linear(32, 1)
            self.optimizer = torch.optim.Adam(self.model.parameters())
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 2)

    with pytest.raises(ResumeError, match="cannot restore the model from .*last_checkpoint.pth"
                                          ": .*size mismatch"):
        Workflow(Wider(None), tmp_path, 3, "exp", system=False).run()


def test_mid_epoch_checkpoints_need_a_resumable_sampler(tmp_path: Path) -> None:
    class Shuffled(ToyTrainer):
        def setup(self) -> None:
            super().setup()
            self.loader = torch.utils.data.DataLoader(self.loader.dataset, batch_size=8,
                                                      shuffle=True)

    with pytest.raises(TypeError, match="sampler to be a loopwise.distributed.sampler."
                                        "ResumableSampler"):
        Workflow(Shuffled(dict(ARGS)), tmp_path, 1, "exp", checkpoint_every=3,
                 system=False).run()


def test_system_sampler_is_started_unless_turned_off(tmp_path: Path) -> None:
    from loopwise.watch.system import SystemMonitor

    trainer = _toy()
    Workflow(trainer, tmp_path, 1, "on").run()
    assert trainer.run.find_helper(SystemMonitor) is not None
    trainer = _toy()
    Workflow(trainer, tmp_path, 1, "off", system=False).run()
    assert trainer.run.find_helper(SystemMonitor) is None


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [0, -3, 2.5, True])
def test_epochs_must_be_positive(tmp_path: Path, epochs: Any) -> None:
    with pytest.raises(ValueError, match=r"epochs must be an int( >= 1)? \(the number of epochs to train\)"):
        Workflow(_toy(), tmp_path, epochs)


@pytest.mark.parametrize("name", ["a/b", "..", "", "bad name!"])
def test_invalid_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid run experiment name"):
        Workflow(_toy(), tmp_path, 1, name)


def test_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create the experiments folder .*pass a path you "
                                      "can write to"):
        Workflow(_toy(), blocker / "exps", 1, "exp", system=False).run()


def test_other_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="trainer must be a loopwise Trainer"):
        Workflow(object(), tmp_path, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checkpoint must be a loopwise CheckpointManager"):
        Workflow(_toy(), tmp_path, 1, checkpoint="ckpts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        Workflow(_toy(), tmp_path, 1, checkpoint_every=0)
    with pytest.raises(TypeError, match=r"callbacks\[0\] is a str"):
        Workflow(_toy(), tmp_path, 1, callbacks=["early"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="allow_reshard must be True or False, got 'yes'"):
        Workflow(_toy(), tmp_path, 1, allow_reshard="yes")  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # nothing made for a refused call


def test_corrupt_args_json_is_an_error_and_left_as_it_was(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()
    (tmp_path / "exp" / "args.json").write_text('{"lr": 0.1,')
    before = {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="args.json is corrupt .* it was left as it was"):
        Workflow(_toy(), tmp_path, 2, "exp", system=False).run()
    after = {p.name: p.read_bytes() for p in (tmp_path / "exp").iterdir() if p.is_file()}
    assert after == before


def test_changed_args_are_shown_and_refused_unless_overridden(tmp_path: Path) -> None:
    Workflow(_toy(), tmp_path, 1, "exp", system=False).run()
    changed = dict(ARGS, lr=0.5, extra=1)
    with pytest.raises(ValueError, match=r"(?s)args differ.*\+ extra: 1 \(given now, not "
                                         r"saved\).*lr: 0.01 \(saved\) -> 0.5 \(now\)"
                                         r".*override_args=True"):
        Workflow(_toy(changed), tmp_path, 2, "exp", system=False).run()
    trainer = _toy(changed)
    Workflow(trainer, tmp_path, 2, "exp", override_args=True, system=False).run()
    assert trainer.args == changed
    assert json.loads((tmp_path / "exp" / "args.json").read_text()) == changed
    kinds = [e.kind for e in RunReader(tmp_path / "exp").events()]
    assert "args_overridden" in kinds


class Returns(ToyTrainer):
    def __init__(self, value: Any) -> None:
        super().__init__(dict(ARGS))
        self.value = value

    def train_loop(self) -> Any:
        return self.value


@pytest.mark.parametrize("value, error, match", [
    ([0.1], TypeError, r"train_loop\(\) must return a dict of metric name -> number, .*; "
                       r"it returned list"),
    (None, TypeError, "it returned NoneType"),
    ({"loss": "low"}, TypeError, r"train_loop\(\) returned 'loss' = 'low' \(str\); metric "
                                 r"values must be numbers"),
    ({"loss": torch.ones(3)}, TypeError, "returned 'loss' = tensor"),
    ({"epoch": 1.0}, ValueError, "returned the metric name 'epoch'"),
])
def test_train_loop_must_return_numbers(tmp_path: Path, value: Any, error: type[Exception],
                                        match: str) -> None:
    with pytest.raises(error, match=match):
        Workflow(Returns(value), tmp_path, 1, "exp", system=False).run()
    assert RunReader(tmp_path / "exp").info["status"] == "failed"


def test_tensor_and_numpy_scalars_are_accepted(tmp_path: Path) -> None:
    import numpy as np

    result = Workflow(Returns({"loss": torch.tensor(0.5), "acc": np.float32(0.25)}), tmp_path,
                      1, "exp", system=False).run()
    assert result.history[0]["loss"] == 0.5 and result.history[0]["acc"] == 0.25


@pytest.mark.parametrize("missing, match", [
    ("model", r"no model after setup\(\): set self.model in setup\(\) \(or override "
              r"get_model\(\)\)"),
    ("optimizer", r"no optimizer after setup\(\): set self.optimizer in setup\(\) \(or "
                  r"override get_optimizer\(\)\)"),
])
def test_setup_must_set_model_and_optimizer(tmp_path: Path, missing: str, match: str) -> None:
    class Forgetful(ToyTrainer):
        def setup(self) -> None:
            super().setup()
            setattr(self, missing, None)

    with pytest.raises(AttributeError, match=match):
        Workflow(Forgetful(dict(ARGS)), tmp_path, 1, "exp", system=False).run()


def test_args_must_be_set_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(AttributeError, match=r"trainer.args is not set: assign self.args"):
        Workflow(ToyTrainer(None), tmp_path, 1, "exp", system=False).run()
    assert not (tmp_path / "exp").exists()


class _FlatValidation(loopwise.Trainer):
    """Training loss falls, validation loss stays flat: a plateau and a widening gap."""

    def __init__(self) -> None:
        self.args = {"lr": 0.1}

    def setup(self) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.epoch = 0

    def train_loop(self) -> dict[str, float]:
        self.epoch += 1
        return {"train_loss": 1.0 / self.epoch}

    def evaluate(self) -> dict[str, float]:
        return {"val_loss": 0.9}


def test_epoch_health_warnings_once_and_no_duplicates_with_trend_watcher(
        tmp_path: Path) -> None:
    from loopwise.callbacks import TrendWatcher

    Workflow(_FlatValidation(), tmp_path, 8, "plain", system=False).run()
    kinds = [e.kind for e in RunReader(tmp_path / "plain").events()]
    assert kinds.count("health.plateau") == 1

    Workflow(_FlatValidation(), tmp_path, 8, "watched", system=False,
             callbacks=[TrendWatcher(patience=3, console=None)]).run()
    kinds = [e.kind for e in RunReader(tmp_path / "watched").events()]
    assert kinds.count("health.plateau") == 1  # the callback's, not the run default as well


def test_resume_with_another_world_size_is_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import loopwise.train.workflow.state as workflow_state

    Workflow(_toy(), tmp_path, 1, "ws", system=False).run()
    before = (tmp_path / "ws/last_checkpoint.pth").read_bytes()
    monkeypatch.setattr(workflow_state, "world_size", lambda: 2)
    with pytest.raises(ResumeError, match=r"saved by 1 process and this run has 2: each rank "
                       r"would see other samples .* Workflow\(\.\.\., allow_reshard=True\)"):
        Workflow(_toy(), tmp_path, 2, "ws", system=False).run()
    assert (tmp_path / "ws/last_checkpoint.pth").read_bytes() == before


class _SamplerTrainer(loopwise.train.workflow.trainer.Trainer):
    """Seed-002 style: no track(); ``setup()`` may start the run's sampler itself."""

    def __init__(self, own_interval: float | None = None) -> None:
        self.args = {"lr": 0.1}
        self.own_interval = own_interval

    def setup(self) -> None:
        from loopwise.watch.system_run import ensure_system_monitor

        self.model = torch.nn.Linear(2, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        if self.own_interval is not None:
            ensure_system_monitor(self.run, interval=self.own_interval)

    def train_loop(self) -> dict[str, float]:
        return {"loss": 1.0}

    def evaluate(self) -> dict[str, float]:
        return {"val_loss": 1.0}

    def get_model(self) -> Any:
        return self.model

    def get_optimizer(self) -> Any:
        return self.optimizer


def _sampler_of(flow: Workflow) -> Any:
    from loopwise.watch.system import SystemMonitor

    assert flow._run is not None
    return flow._run.find_helper(SystemMonitor)


def test_system_interval_is_set_through_workflow_and_a_started_sampler_is_kept(
        tmp_path: Path) -> None:
    flow = Workflow(_SamplerTrainer(), tmp_path, 1, "every", system=0.25, health=False)
    flow.run()
    assert _sampler_of(flow).interval == 0.25
    own = Workflow(_SamplerTrainer(own_interval=7.0), tmp_path, 1, "own", system=True,
                   health=False)
    own.run()
    assert _sampler_of(own).interval == 7.0  # the trainer's own sampler, not a default one
    off = Workflow(_SamplerTrainer(), tmp_path, 1, "off", system=False, health=False)
    off.run()
    assert _sampler_of(off) is None
    with pytest.raises(ValueError, match=r"system must be True .* got 'yes'"):
        Workflow(_SamplerTrainer(), tmp_path, 1, "bad", system="yes")  # type: ignore[arg-type]


class _FailsInEpoch2(ToyTrainer):
    def train_loop(self) -> dict[str, float]:
        if self.epoch == 1:
            raise RuntimeError("boom in epoch 2")
        return super().train_loop()


def test_a_failed_workflow_writes_its_report_as_fit_does(tmp_path: Path) -> None:
    # one end of a run: the report of a failed run is the one a user opens first
    with pytest.raises(RuntimeError, match="boom in epoch 2"):
        Workflow(_FailsInEpoch2(dict(ARGS)), tmp_path, 3, "exp", system=False).run()
    folder = tmp_path / "exp"
    assert RunReader(folder).status == "failed"
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "failed" in html and "boom in epoch 2" in html
