"""What a ``Workflow`` checkpoint holds, and how a resume puts it back.

``capture_state`` gathers the full training state (model, optimizer, scheduler, scaler, RNG,
callbacks, the train monitor, the position in the epoch, the epoch's train metrics and time).
``read_checkpoint`` finds the newest usable, verified one (``last_checkpoint.pth``, else the
``CheckpointManager``'s latest good checkpoint) before the run is reopened, and
``check_resumable`` checks it is complete, from the same world size and with the same callbacks;
``restore_state`` restores every component and returns where to continue
(:class:`ResumePoint`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.checkpoint.distributed import check_world_size
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.checkpoint.store import (
    CheckpointError,
    CorruptCheckpointError,
    UnverifiedCheckpointError,
)
from loopwise.distributed.errors import ResumeError
from loopwise.distributed.group import wrap_model
from loopwise.distributed.loader import LoopPosition
from loopwise.distributed.rng import capture_rng_state
from loopwise.record.folder import RUN_FILE
from loopwise.record.recorder import TrainingRun
from loopwise.train.callbacks.base import CallbackList
from loopwise.train.resume.restore import restore_component, world_size
from loopwise.train.workflow.trainer import Trainer
from loopwise.watch.monitor import TrainingMonitor

FORMAT = "loopwise.workflow"
CHECKPOINT_FILE = "last_checkpoint.pth"
WEIGHTS_FILE = "last_weights.pt"
REQUIRED = ("format", "epoch", "phase", "global_step", "model", "optimizer", "scheduler",
            "scaler", "rng", "callbacks", "monitor", "loop", "train_metrics", "train_seconds",
            "world_size")


@dataclass
class ResumePoint:
    """Where a restored checkpoint left off. ``phase``: ``trained`` (the epoch's pass is done,
    its evaluation is not), ``in_epoch`` (saved mid-pass; ``loop`` is the position and RNG) or
    ``evaluated`` (the epoch is complete)."""

    epoch: int
    phase: str
    train_metrics: dict[str, float]
    train_seconds: float
    rng: dict[str, Any]
    loop: tuple[LoopPosition, dict[str, Any]] | None
    monitor: dict[str, Any] | None
    epoch_rng: dict[str, Any] | None

    @property
    def start_epoch(self) -> int:
        """The epoch to start with."""
        return self.epoch + 1 if self.phase == "evaluated" else self.epoch


def capture_state(trainer: Trainer, callbacks: CallbackList, run: TrainingRun, epoch: int,
                  phase: str, *, monitor: TrainingMonitor[Any] | None,
                  epoch_rng: dict[str, Any] | None,
                  loop: LoopPosition | None = None,
                  train_metrics: Mapping[str, float] | None = None,
                  train_seconds: float = 0.0) -> dict[str, Any]:
    """The full state of a Workflow at ``epoch``/``phase``, as a checkpoint holds it."""
    scheduler, scaler = trainer.get_scheduler(), trainer.get_scaler()
    return {
        "format": FORMAT, "version": 1, "epoch": epoch, "phase": phase,
        "global_step": run.global_step,
        "model": plain_model(trainer.get_model()).state_dict(),
        "optimizer": trainer.get_optimizer().state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": capture_rng_state(),
        "callbacks": callbacks.state_dict(),
        "monitor": None if monitor is None else monitor.state_dict(),
        "loop": None if loop is None else loop.to_state(),
        "epoch_rng": epoch_rng if loop is not None else None,
        "train_metrics": dict(train_metrics or {}),
        "train_seconds": train_seconds,
        "world_size": world_size(),
    }


@dataclass
class FoundCheckpoint:
    """The checkpoint a resume continues from, where it came from, and the events to record
    once the run is reopened (``(kind, message)``)."""

    state: dict[str, Any]
    source: str
    notes: list[tuple[str, str]]


def read_checkpoint(files: NamedFiles, checkpoint: CheckpointManager | None, *,
                    epochs_done: int, allow_unverified: bool) -> FoundCheckpoint | None:
    """The newest usable checkpoint, verified, read before the run is reopened (a refusal
    changes nothing); None when the experiment never saved one.

    ``last_checkpoint.pth`` is used when its hash matches. A corrupt one falls back to the
    ``CheckpointManager``'s latest good checkpoint; so does an unverifiable one (the verified
    copy is preferred), which without a manager is an error unless ``allow_unverified``. A
    missing one while ``run.json`` says epochs were done is an error, never a fresh start.
    """
    path = files.folder / CHECKPOINT_FILE
    keep = "Nothing was changed; "
    if not files.exists(CHECKPOINT_FILE):
        managed = _managed(checkpoint, f"{path} is missing")
        if managed is not None:
            return managed
        if epochs_done > 0 or files.entry(CHECKPOINT_FILE) is not None:
            raise CheckpointError(
                f"{path} is missing, but {files.folder / RUN_FILE} says {epochs_done} "
                f"epoch(s) were done. {keep}restore the file (e.g. from a backup), pass "
                "checkpoint=CheckpointManager(...) holding this experiment's checkpoints, or "
                "move the experiment folder away (or choose another name) to start again")
        return None
    try:
        state, _ = files.load(CHECKPOINT_FILE)
        return FoundCheckpoint(_as_dict(state, path), str(path), [])
    except CorruptCheckpointError as exc:
        managed = _managed(checkpoint, str(exc), kind="checkpoint_corrupt")
        if managed is None:
            raise CheckpointError(f"{exc}. {keep}restore the file from a backup, or move the "
                                  "experiment folder away to start again") from exc
        return managed
    except UnverifiedCheckpointError as exc:
        managed = _managed(checkpoint, f"{exc}; it was not used",
                           kind="checkpoint_unverified")
        if managed is not None:
            return managed
        if not allow_unverified:
            raise UnverifiedCheckpointError(
                f"{exc}. {keep}restore {files.manifest}, pass checkpoint=CheckpointManager(...) "
                "holding a verified copy, or pass Workflow(..., allow_unverified=True) to load "
                "it without a hash check") from exc
        state, _ = files.load(CHECKPOINT_FILE, allow_unverified=True)
        note = f"{exc}; loaded without a hash check (allow_unverified=True)"
        return FoundCheckpoint(_as_dict(state, path), f"{path} (unverified)",
                               [("checkpoint_unverified", note)])


def _managed(checkpoint: CheckpointManager | None, why: str, *,
             kind: str = "checkpoint_missing") -> FoundCheckpoint | None:
    """The manager's latest good checkpoint (verified by its manifest), if it has one."""
    if checkpoint is None:
        return None
    found = checkpoint.load_latest_info()
    if found is None:
        return None
    state, info = found
    source = f"{info.path} (step {info.step}, verified)"
    return FoundCheckpoint(state, source, [(kind, f"{why}; using {source}")])


def _as_dict(state: object, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise CorruptCheckpointError(path, f"it holds a {type(state).__name__}, not a dict")
    return state


def prepare_resume(folder: Path, checkpoint: CheckpointManager | None, callbacks: CallbackList,
                   info: Mapping[str, Any], *, allow_unverified: bool,
                   allow_reshard: bool = False) -> FoundCheckpoint | None:
    """Read, verify and check the checkpoint an experiment resumes from, before anything is
    reopened (``info``: its ``run.json``). A checkpoint of another world size is refused, or
    with ``allow_reshard`` continues from the start of its epoch (the weights as saved)."""
    found = read_checkpoint(NamedFiles(folder), checkpoint,
                            epochs_done=int((info.get("workflow") or {}).get("epochs_done", 0)),
                            allow_unverified=allow_unverified)
    if found is not None and check_resumable(callbacks, found.state, found.source,
                                             allow_reshard=allow_reshard):
        found.state = resharded(found.state)
    return found


def check_resumable(callbacks: CallbackList, state: Mapping[str, Any], source: str, *,
                    allow_reshard: bool = False) -> bool:
    """What can be checked before anything is touched: a complete Workflow checkpoint, the
    same world size (True: another one, allowed), the same callbacks in the same order."""
    missing = [k for k in REQUIRED if k not in state]
    if missing or state.get("format") != FORMAT:
        raise ResumeError(f"{source} is not a complete Workflow checkpoint (missing "
                          f"{', '.join(missing) or 'format'})")
    try:
        reshard = check_world_size(int(state["world_size"]), source=source,
                                   allow_reshard=allow_reshard, world=world_size())
    except ValueError as exc:
        raise ResumeError(str(exc).replace("pass allow_reshard=True",
                                           "pass Workflow(..., allow_reshard=True)")) from None
    try:
        callbacks.check_state(state["callbacks"])
    except ValueError as exc:
        raise ResumeError(f"cannot restore the callbacks from {source}: {exc}") from exc
    return reshard


def resharded(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint resumed under another world size, as this world size's: an epoch saved
    mid-pass starts again (the sharding of its samples changed), from the weights as saved."""
    if state["phase"] != "in_epoch":
        return {**state, "world_size": world_size()}
    done = int(state["loop"]["batches_done"]) if state["loop"] else 0
    return {**state, "world_size": world_size(), "phase": "evaluated",
            "epoch": int(state["epoch"]) - 1, "loop": None,
            "monitor": None, "epoch_rng": None,
            "global_step": max(int(state["global_step"]) - done, 0)}


def distribute_trainer(trainer: Trainer) -> None:
    """Under torchrun, after ``setup()``: ``trainer.model`` in ``DistributedDataParallel`` on
    the device its parameters are on (a model ``get_model()`` finds elsewhere, or one already
    wrapped, is left to the trainer)."""
    model = trainer.get_model()
    if model is trainer.model and plain_model(model) is model:
        device = next((p.device for p in model.parameters()), None)
        if device is not None:
            trainer.model = wrap_model(model, device)


def plain_model(model: Any) -> Any:
    """The model inside ``DistributedDataParallel`` (checkpoints hold its weights), else
    ``model``."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def restore_state(trainer: Trainer, callbacks: CallbackList, run: TrainingRun,
                  state: dict[str, Any], source: str) -> ResumePoint:
    """Restore every component ``state`` holds; return where to continue."""
    check_resumable(callbacks, state, source)
    restore_component("model", plain_model(trainer.get_model()), state["model"],
                      source=source)
    restore_component("optimizer", trainer.get_optimizer(), state["optimizer"], source=source)
    restore_component("LR scheduler", trainer.get_scheduler(), state["scheduler"],
                      source=source)
    restore_component("grad scaler", trainer.get_scaler(), state["scaler"], source=source)
    try:
        callbacks.load_state_dict(state["callbacks"])
    except (ValueError, KeyError) as exc:
        raise ResumeError(f"cannot restore the callbacks from {source}: {exc}") from exc
    run.restore_step(int(state["global_step"]))
    epoch, phase = int(state["epoch"]), str(state["phase"])
    loop = None
    if phase == "in_epoch":
        loop = (LoopPosition.from_state(state["loop"]), state["rng"])
    point = ResumePoint(epoch=epoch, phase=phase,
                        train_metrics=dict(state["train_metrics"] or {}),
                        train_seconds=float(state["train_seconds"]), rng=state["rng"],
                        loop=loop, monitor=state["monitor"], epoch_rng=state.get("epoch_rng"))
    run.log_event("checkpoint_loaded", f"resumed from {source} (epoch {epoch}, {phase})",
                  data={"epoch": epoch, "phase": phase, "global_step": run.global_step})
    return point


def restore_found(trainer: Any, callbacks: Any, run: TrainingRun, found: FoundCheckpoint | None, *,
                  quiet: bool = False) -> ResumePoint | None:
    """Restore the checkpoint read before the run was reopened (None: a fresh start); its
    notes become warnings and events, and the console says which file was used."""
    if found is None:
        return None
    for kind, message in found.notes:
        logging.getLogger("loopwise.train.workflow.runner").warning("%s", message)
        run.log_event(kind, message, level="warning")
    point = restore_state(trainer, callbacks, run, found.state, found.source)
    if not quiet:  # (quiet: a rank other than 0 under torchrun)
        print(f"loopwise: resuming {run.path} from {found.source} (epoch {point.epoch}, "
              f"{point.phase})", file=sys.stderr)
    return point
