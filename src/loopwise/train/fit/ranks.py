"""``fit`` under ``torchrun``: which run folder every rank uses (rank 0 decides), the model and
loaders of each rank, and the log of a rank that writes nothing (``docs/distributed.md``).

In one process (``group`` None) :func:`choose_run` is :func:`~loopwise.train.fit.runplan.plan_run`
(or the given run) as before."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from loopwise.distributed.group import RankRun, TrainGroup, rank_device, shard_loader, wrap_model
from loopwise.record import Run, generate_run_name
from loopwise.record.folder import CONFIG_FILE
from loopwise.train.fit.runplan import plan_run

Choice = tuple[bool, Path | None, Any]
"""``(owns, skipped, run)`` (see :func:`choose_run`)."""


def choose_run(group: TrainGroup | None, run: Run | None, root: str | Path, name: str | None,
               params: Mapping[str, Any], *, model_name: str, force: bool) -> Choice:
    """``(owns, skipped, run)``: whether fit made the run (and closes it), the folder of a run
    that already finished (then ``run`` is None), and the run to train in. Under torchrun rank
    0 decides (:meth:`~loopwise.distributed.group.TrainGroup.decide`) and every other rank
    takes its decision with a :class:`~loopwise.distributed.group.RankRun` (nothing written
    there); an error on rank 0 stops every rank."""

    def choose() -> Choice:
        if run is not None:
            if not (run.path / CONFIG_FILE).exists():
                run.set_config(params)
            return False, None, run
        made = plan_run(root, name or generate_run_name(), params, model_name=model_name,
                        force=force)
        if made.run is not None:  # reopened: counted again from its checkpoint, if any
            made.run.restore_step(0, epoch=0)
        return True, made.path if made.run is None else None, made.run

    if group is None:
        return choose()
    return group.decide(choose, share=_shared, follow=_follow, what="fit()")


def _shared(choice: Choice) -> dict[str, Any]:
    """What the other ranks need of rank 0's choice (picklable)."""
    owns, skipped, run = choice
    return {"owns": owns, "path": str(skipped if run is None else run.path),
            "skip": run is None, "step": 0 if run is None else run.global_step}


def _follow(plan: dict[str, Any]) -> Choice:
    """A rank other than 0: rank 0's choice, with a run that writes nothing."""
    if plan["skip"]:
        return plan["owns"], Path(plan["path"]), None
    return plan["owns"], None, RankRun(plan["path"], global_step=plan["step"])


def distribute(group: TrainGroup, model: torch.nn.Module, train_loader: Any, val_loader: Any,
               device: torch.device, seed: int
               ) -> tuple[Any, Any, torch.device, torch.nn.Module, torch.nn.Module]:
    """The loaders split over the ranks (the training one padded so that every rank takes as
    many steps), this rank's device, the plain model (checkpoints hold its weights) and the
    model in ``DistributedDataParallel`` (the steps run it; a model given in DDP is kept)."""
    from torch.nn.parallel import DistributedDataParallel

    train_loader = shard_loader(train_loader, group, what="train_loader", seed=seed, pad=True)
    if val_loader is not None:
        val_loader = shard_loader(val_loader, group, what="val_loader", seed=seed, pad=False)
    device = rank_device(device)
    plain = model.module if isinstance(model, DistributedDataParallel) else model
    plain.to(device)
    return train_loader, val_loader, device, plain, wrap_model(model, device)


def quiet_logger(model_name: str) -> logging.Logger:
    """The fit log of a rank other than 0: no file (rank 0 writes the run's), no console."""
    logger = logging.getLogger(f"loopwise.fit.{model_name}.rank")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger
