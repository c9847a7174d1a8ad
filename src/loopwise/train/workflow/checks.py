"""What a ``Workflow`` checks before and while it trains: its own arguments, ``trainer.args``
against the saved ``args.json``, the ``run.json`` of an experiment it resumes (and whether it
already finished), the model and optimizer ``setup()`` left, the options of ``self.track()``,
and the metrics ``train_loop()`` and ``evaluate()`` return. Each check raises a clear, specific
error before anything recorded is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.record.names import validate_run_name
from loopwise.record.opening import run_finished
from loopwise.train.resume.rerun import RerunDecision, decide_rerun
from loopwise.train.workflow.experiment import TIMING_COLUMNS, normalize_args
from loopwise.train.workflow.trainer import Trainer
from loopwise.utils.validate import check_bool, check_int, check_optional_int, is_key
from loopwise.watch.convert import to_float


def check_options(trainer: Trainer, path: str | os.PathLike[str], epochs: int, name: str | None,
                  checkpoint: CheckpointManager | None, checkpoint_every: int | None) -> None:
    """Validate the arguments of ``Workflow(...)``."""
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must be a loopwise Trainer subclass instance, got "
                        f"{type(trainer).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path, got {type(path).__name__}")
    check_int(epochs, what="epochs", minimum=1, hint="the number of epochs to train")
    if name is not None:
        validate_run_name(name, what="experiment name")
    if checkpoint is not None and not isinstance(checkpoint, CheckpointManager):
        raise TypeError(f"checkpoint must be a loopwise CheckpointManager, got "
                        f"{type(checkpoint).__name__}")
    check_optional_int(checkpoint_every, what="checkpoint_every", minimum=1, hint="batches")


def current_args(trainer: Trainer) -> dict[str, Any] | None:
    """``trainer.args`` normalized as JSON gives it back; None when it is not set."""
    args = getattr(trainer, "args", None)
    return None if args is None else normalize_args(args)


def plan_resume(folder: Path, saved: dict[str, Any], current: dict[str, Any] | None,
                info: Mapping[str, Any], epochs: int, override: bool) -> RerunDecision:
    """The one rerun decision (``rerun.decide_rerun``) for an experiment folder: ``finished``
    when ``run.json`` says there is nothing left for ``epochs``, ``resume`` otherwise, refused
    when the args differ (unless ``override``: the differences are then returned)."""
    return decide_rerun(
        folder, saved=saved, current=current, finished=already_finished(info, epochs) is not None,
        what="the args", saved_in=folder / "args.json", override=override,
        way_out="resume with the saved args, or pass Workflow(..., override_args=True)")


def already_finished(info: Mapping[str, Any], epochs: int) -> tuple[int, str | None] | None:
    """``(epochs_done, stopped)`` when the run is finished (the one marker,
    :func:`~loopwise.record.opening.run_finished`) and its ``run.json`` (``info``) says there is
    nothing left to do for ``epochs`` (a callback stopped it, or the epochs are done); None
    otherwise (a finished experiment asked for more epochs is resumed)."""
    progress = info.get("workflow") or {}
    if run_finished(info) and (
            progress.get("stopped") or int(progress.get("epochs_done", 0)) >= epochs):
        return int(progress.get("epochs_done", 0)), progress.get("stopped") or None
    return None


def check_setup(trainer: Trainer) -> None:
    """After ``setup()``: ``args`` is still a dict, and there is a model and an optimizer."""
    if not isinstance(getattr(trainer, "args", None), dict):
        raise AttributeError("trainer.args is not a dict after setup(); do not replace it "
                             "in setup() (set it in __init__)")
    model = trainer.get_model()
    if model is None:
        raise AttributeError("the trainer has no model after setup(): set self.model in "
                             "setup() (or override get_model())")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"get_model() returned a {type(model).__name__}, not a "
                        "torch.nn.Module; set self.model in setup()")
    optimizer = trainer.get_optimizer()
    if optimizer is None:
        raise AttributeError("the trainer has no optimizer after setup(): set "
                             "self.optimizer in setup() (or override get_optimizer())")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"get_optimizer() returned a {type(optimizer).__name__}, not a "
                        "torch.optim.Optimizer; set self.optimizer in setup()")


def check_track_options(options: Mapping[str, Any]) -> None:
    """Under a Workflow, ``self.track()`` records into the experiment's run."""
    for key in ("run", "record", "root", "name", "config"):
        if key in options:
            raise TypeError(f"under a Workflow, track() records into the experiment's run; "
                            f"do not pass {key}=")


def clean_metrics(result: object, where: str) -> dict[str, float]:
    """The metrics ``where`` (``train_loop()`` or ``evaluate()``) returned, as floats."""
    if not isinstance(result, Mapping):
        raise TypeError(f"{where} must return a dict of metric name -> number, e.g. "
                        f"{{'train_loss': 0.3}}; it returned {type(result).__name__}")
    clean: dict[str, float] = {}
    for key, value in result.items():
        if not is_key(key) or key == "epoch" or key in TIMING_COLUMNS:
            raise ValueError(f"{where} returned the metric name {key!r}; use non-empty names "
                             f"other than 'epoch', {', '.join(TIMING_COLUMNS)}")
        try:  # the one converter (once an epoch: a device value is read now)
            clean[key] = to_float(key, value)
        except (TypeError, ValueError):
            raise TypeError(f"{where} returned {key!r} = {value!r:.60} "
                            f"({type(value).__name__}); metric values must be numbers"
                            ) from None
    return clean


def check_flag(value: object, what: str) -> bool:
    """A True/False option, or a clear error (the one check, :func:`~loopwise.utils.validate.
    check_bool`)."""
    return check_bool(value, what=what)


def check_checkpoint_folder(checkpoint: Any, path: Path, name: str | None) -> None:
    """A CheckpointManager needs a folder of its own, not the experiment folder."""
    if checkpoint is not None and name is not None and \
            checkpoint.directory.resolve() == (path / name).resolve():
        raise ValueError(f"checkpoint=CheckpointManager({str(checkpoint.directory)!r}) is the "
                         "experiment folder itself; give it a folder of its own")
