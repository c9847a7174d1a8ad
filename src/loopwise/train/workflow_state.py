"""What a ``Workflow`` checkpoint holds, and how a resume puts it back.

``capture_state`` gathers the full training state (model, optimizer, scheduler, scaler, RNG,
callbacks, the train monitor, the position in the epoch, the epoch's train metrics and time).
``read_checkpoint`` finds the newest usable one (``last_checkpoint.pth``, else the
``CheckpointManager``'s latest good checkpoint); ``restore_state`` checks it is complete and
from the same world size, restores every component and returns where to continue
(:class:`ResumePoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopwise.record.run import Run
from loopwise.train.callbacks.base import CallbackList
from loopwise.train.checkpoint import CheckpointManager
from loopwise.train.checkpoint_store import CheckpointError, CorruptCheckpointError
from loopwise.train.experiment import CheckpointFiles
from loopwise.train.resume import (
    LoopPosition,
    ResumeError,
    capture_rng_state,
    restore_component,
    world_size,
)
from loopwise.train.trainer import Trainer
from loopwise.watch.monitor import TrainingMonitor

FORMAT = "loopwise.workflow"
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


def capture_state(trainer: Trainer, callbacks: CallbackList, run: Run, epoch: int, phase: str,
                  *, monitor: TrainingMonitor[Any] | None, epoch_rng: dict[str, Any] | None,
                  loop: LoopPosition | None = None,
                  train_metrics: Mapping[str, float] | None = None,
                  train_seconds: float = 0.0) -> dict[str, Any]:
    """The full state of a Workflow at ``epoch``/``phase``, as a checkpoint holds it."""
    scheduler, scaler = trainer.get_scheduler(), trainer.get_scaler()
    return {
        "format": FORMAT, "version": 1, "epoch": epoch, "phase": phase,
        "global_step": run.global_step,
        "model": trainer.get_model().state_dict(),
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


def read_checkpoint(files: CheckpointFiles, checkpoint: CheckpointManager | None,
                    run: Run) -> tuple[dict[str, Any], str] | None:
    """The newest usable checkpoint and where it came from; None when there is none.

    A corrupt ``last_checkpoint.pth`` falls back to ``checkpoint``'s latest good one (with a
    ``checkpoint_corrupt`` event); without a ``CheckpointManager`` it is an error.
    """
    state: dict[str, Any] | None = None
    source = str(files.checkpoint_path)
    if files.exists():
        try:
            state, note = files.load()
            if note:
                run.log_event("checkpoint_unverified", note, level="warning")
        except CorruptCheckpointError as exc:
            if checkpoint is None:
                raise CheckpointError(
                    f"{exc}. Nothing was changed; restore the file from a backup, or move "
                    "the experiment folder away to start again"
                ) from exc
            run.log_event("checkpoint_corrupt", f"{exc}; using the CheckpointManager's "
                          "latest good checkpoint", level="warning")
    if state is None and checkpoint is not None:
        state = checkpoint.load_latest()
        source = f"the latest checkpoint in {checkpoint.directory}"
    return None if state is None else (state, source)


def restore_state(trainer: Trainer, callbacks: CallbackList, run: Run, state: dict[str, Any],
                  source: str) -> ResumePoint:
    """Restore every component ``state`` holds; return where to continue."""
    missing = [k for k in REQUIRED if k not in state]
    if missing or state.get("format") != FORMAT:
        raise ResumeError(f"{source} is not a complete Workflow checkpoint (missing "
                          f"{', '.join(missing) or 'format'})")
    if int(state["world_size"]) != world_size():
        raise ResumeError(f"{source} was written with world size {state['world_size']}, "
                          f"this process has {world_size()}; resume with the same number "
                          "of processes")
    restore_component("model", trainer.get_model(), state["model"], source=source)
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
