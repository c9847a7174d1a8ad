"""Which experiment a ``Workflow`` opens: a new one, one to resume (its checkpoint read and
checked before anything is reopened), or one that already finished (nothing to do).

Under ``torchrun`` rank 0 decides (:func:`open_experiment`) and hands its decision to every
other rank (:func:`open_everywhere`, with
:meth:`~loopwise.distributed.group.TrainGroup.decide`), which follows it (:func:`follow`) with a
:class:`~loopwise.distributed.group.RankRun`: one folder, written by rank 0 alone.
An error on rank 0 stops every rank with its message."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.distributed.group import RankRun, TrainGroup
from loopwise.record.names import is_unborn
from loopwise.record.opening import open_run
from loopwise.record.recorder import TrainingRun
from loopwise.record.run import check_reopen
from loopwise.train.callbacks.base import CallbackList
from loopwise.train.workflow.checks import (
    already_finished,
    check_checkpoint_folder,
    current_args,
    plan_resume,
)
from loopwise.train.workflow.experiment import HISTORY_FILE, History, check_writable, read_args
from loopwise.train.workflow.state import FoundCheckpoint, prepare_resume
from loopwise.train.workflow.trainer import Trainer

_log = logging.getLogger("loopwise.train.workflow.runner")


@dataclass
class Opening:
    """``action``: ``start`` (``args``), ``resume`` (``saved``/``current`` args, their
    ``diff``, the checkpoint ``found``) or ``finished`` (``done`` epochs); ``run``: the run
    to train in (None when finished)."""

    action: str
    folder: Path
    run: TrainingRun | None = None
    args: dict[str, Any] | None = None
    saved: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] | None = None
    diff: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    found: FoundCheckpoint | None = None
    done: int = 0

    def shared(self) -> dict[str, Any]:
        """What the other ranks need to follow (picklable)."""
        return {"action": self.action, "folder": str(self.folder), "args": self.args,
                "saved": self.saved, "current": self.current, "diff": self.diff,
                "info": self.info, "done": self.done}


@dataclass
class Options:
    """The Workflow options the opening reads."""

    path: Path
    name: str | None
    epochs: int
    checkpoint: CheckpointManager | None
    callbacks: CallbackList
    override_args: bool
    allow_unverified: bool
    allow_reshard: bool


def open_experiment(trainer: Trainer, opt: Options) -> Opening:
    """Create the experiment, or check the one to resume before it is reopened (a refusal
    leaves the folder as it was), through the one opener (:func:`~loopwise.record.opening.
    open_run`): its args, whether it finished, and its checkpoint are read in its ``decide``."""
    check_writable(opt.path)
    check_checkpoint_folder(opt.checkpoint, opt.path, opt.name)
    current = current_args(trainer)
    if current is None and (opt.name is None or not (opt.path / opt.name).exists()
                            or is_unborn(opt.path / opt.name)):
        raise AttributeError("trainer.args is not set: assign self.args = {...} in the "
                             "trainer's __init__ (it is saved to args.json before setup())")
    seen: dict[str, Any] = {}

    def decide(folder: Path, info: dict[str, Any]) -> str:
        saved = read_args(folder)
        decision = plan_resume(folder, saved, current, info, opt.epochs, opt.override_args)
        seen.update(saved=saved, diff=decision.differences)
        if decision.action == "finished":
            return "finished"
        check_reopen(folder)  # the record and history.csv, before any checkpoint is looked at:
        History(folder / HISTORY_FILE).load()  # a refusal changes no file
        seen["found"] = _checkpoint(folder, info, opt)  # read and checked before the reopen
        return "resume"

    opened = open_run(opt.path, opt.name, config=current, decide=decide)
    if opened.action == "new":
        return Opening("start", opened.path, run=opened.run, args=current)
    if opened.action == "finished":
        done, stopped = already_finished(opened.info, opt.epochs) or (0, None)
        _log.warning("experiment %s already finished (%d epochs%s); nothing to do",
                     opened.path, done, f", stopped: {stopped}" if stopped else "")
        return Opening("finished", opened.path, done=done)
    return Opening("resume", opened.path, run=opened.run, saved=seen["saved"], current=current,
                   diff=seen["diff"], info=opened.info, found=seen["found"])


def follow(shared: dict[str, Any], opt: Options) -> Opening:
    """A rank other than 0: rank 0's decision, the checkpoint read here too; nothing written."""
    folder = Path(shared["folder"])
    opening = Opening(shared["action"], folder, args=shared["args"], saved=shared["saved"],
                      current=shared["current"], diff=shared["diff"], info=shared["info"],
                      done=shared["done"])
    if opening.action != "finished":
        opening.run = RankRun(folder)
    if opening.action == "resume":
        opening.found = _checkpoint(folder, opening.info, opt)
    return opening


def open_everywhere(group: TrainGroup | None, trainer: Trainer, opt: Options) -> Opening:
    """:func:`open_experiment` in one process; under torchrun on rank 0, every other rank
    following its decision."""
    if group is None:
        return open_experiment(trainer, opt)
    return group.decide(lambda: open_experiment(trainer, opt), share=Opening.shared,
                        follow=lambda shared: follow(shared, opt), what="Workflow.run()")


def _checkpoint(folder: Path, info: dict[str, Any], opt: Options) -> FoundCheckpoint | None:
    return prepare_resume(folder, opt.checkpoint, opt.callbacks, info,
                          allow_unverified=opt.allow_unverified,
                          allow_reshard=opt.allow_reshard)
