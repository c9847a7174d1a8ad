"""The files a fit writes in its run folder, named as the reference names them.

=================================  ===========================================================
``<name>_best_model.pth``          the best weights (a state dict), replaced atomically
``<name>_config.json``             the TrainingConfig (``TrainingConfig.load`` reads it)
``<name>_training.log``            the text log (timestamps, epoch lines, events)
``<name>_loss_analysis.png``       loss curves and the generalisation gap
``<name>_predictions.png``         predictions against targets on the validation data
``<name>_checkpoint_<epoch>.pth``  periodic checkpoints (every ``checkpoint_every`` epochs)
``<name>_results.json``            losses per epoch, test loss, best epoch, how training ended
``checkpoints/``                   the CheckpointManager's folder: verified, rotated saves
=================================  ===========================================================

``<name>_best_model.pth`` is a fixed-name file of the same storage
(:class:`~loopwise.checkpoint.named.NamedFiles`): hashed into the run folder's
``manifest.json`` when written and verified on every load (:meth:`FitFiles.load_best`).
Checkpoints are written once, by :class:`~loopwise.checkpoint.manager.CheckpointManager` (atomic
write, hash in its manifest, keep-last rotation, fallback to the previous good file on load).
The reference-named ``<name>_checkpoint_<epoch>.pth`` is a hard link to the manager's file (a
copy where the filesystem has no hard links), listed in the run folder's manifest as a
reference to the manager's entry (``source``: one manifest owns each file's hash;
``load_state_dict_safely`` verifies the named file against the manager's manifest), and
disappears when the manager rotates it out.
Such a file holds the manager's payload: the fit state is under ``"state"`` (weights under
``["state"]["model"]``; :func:`loopwise.checkpoint.weights.load_state_dict_safely` finds them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.checkpoint.store import CheckpointError, copy_file
from loopwise.checkpoint.weights import read_state_dict
from loopwise.distributed.group import TrainGroup
from loopwise.record.recorder import TrainingRun
from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.jsonsafe import json_safe

BEST_MODEL = "best_model.pth"
CONFIG = "config.json"
LOG = "training.log"
LOSS_PLOT = "loss_analysis.png"
PREDICTIONS_PLOT = "predictions.png"
RESULTS = "results.json"


def fit_file(folder: str | os.PathLike[str], model_name: str, suffix: str) -> Path:
    """The path of one of the files above: ``<folder>/<model_name>_<suffix>``."""
    return Path(folder) / f"{model_name}_{suffix}"


class FitFiles:
    """Paths and writers of one fit's files in ``folder`` for ``model_name``.

    Under ``torchrun`` (``group``, a :class:`~loopwise.distributed.group.TrainGroup`)
    rank 0 alone writes, and every rank waits at a barrier after each checkpoint or best model
    until it is whole: no rank runs ahead of (or reads) a half-written file."""

    def __init__(self, folder: Path, model_name: str, *, keep: int,
                 run: TrainingRun | None = None, group: TrainGroup | None = None) -> None:
        self.group = group
        self.writes = group is None or group.leader
        self.folder = Path(folder)
        self.name = model_name
        self.best_model = self._path(BEST_MODEL)
        self.config = self._path(CONFIG)
        self.log = self._path(LOG)
        self.loss_plot = self._path(LOSS_PLOT)
        self.predictions_plot = self._path(PREDICTIONS_PLOT)
        self.results = self._path(RESULTS)
        self.manager = CheckpointManager(self.folder / "checkpoints", keep_last=keep, run=run)
        self.named = NamedFiles(self.folder)
        self._pattern = re.compile(rf"^{re.escape(model_name)}_checkpoint_(\d+)\.pth$")

    def _path(self, suffix: str) -> Path:
        return fit_file(self.folder, self.name, suffix)

    def checkpoint_path(self, epoch: int) -> Path:
        return self._path(f"checkpoint_{epoch}.pth")

    def save_best_model(self, model: torch.nn.Module, *, epoch: int = 0) -> Path:
        if self.group is None:  # the weights copied now, written and fsynced in the background
            self.named.save_later({self.best_model.name: model.state_dict()}, step=epoch)
            return self.best_model
        if self.writes:  # torchrun: rank 0 writes, every rank waits until the file is whole
            self.named.save({self.best_model.name: model.state_dict()}, step=epoch)
        self.group.barrier()
        return self.best_model

    def load_best(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor] | None:
        """The best weights, verified against the manifest (None when never saved)."""
        self.named.wait()  # the last best save is on disk
        return load_best_model(self.best_model, device)

    def save_checkpoint(self, state: dict[str, Any], *, step: int, epoch: int, periodic: bool,
                        in_progress: int | None = None) -> Path:
        """Save through the manager; periodic saves also get their reference name."""
        if self.group is not None and not self.writes:  # rank 0 writes; wait until it has
            self.group.barrier()
            return self.checkpoint_path(epoch) if periodic else self.manager.directory
        shown = self._save_checkpoint(state, step=step, epoch=epoch, periodic=periodic,
                                      in_progress=in_progress)
        if self.group is not None:
            self.group.barrier()
        return shown

    def _save_checkpoint(self, state: dict[str, Any], *, step: int, epoch: int, periodic: bool,
                         in_progress: int | None) -> Path:
        metrics = {"epoch": float(epoch), "periodic": 1.0 if periodic else 0.0}
        if in_progress is not None:
            metrics["epoch_in_progress"] = float(in_progress)
        path = self.manager.save(state, step=step, metrics=metrics)
        shown = path
        if periodic:
            shown = self.checkpoint_path(epoch)
            _link(path, shown)
            self.named.adopt(shown.name, path, step=epoch)  # the manager's entry owns the hash
        self._prune()
        return shown

    def _prune(self) -> None:
        kept = {int(info.metrics["epoch"]) for info in self.manager.list()
                if info.metrics.get("periodic")}
        gone = []
        for file in self.folder.glob(f"{self.name}_checkpoint_*.pth"):
            match = self._pattern.match(file.name)
            if match and int(match.group(1)) not in kept:
                file.unlink(missing_ok=True)
                gone.append(file.name)
        if gone:
            self.named.forget(gone)

    def load_latest(self, device: torch.device) -> dict[str, Any] | None:
        return self.manager.load_latest(map_location=device)

    def write_results(self, results: dict[str, Any]) -> Path:
        if self.writes:
            atomic_write_json(self.results, json_safe(results))
        return self.results

    def close(self) -> None:
        """Finish the saves in flight (best weights, checkpoints); raise their errors."""
        try:
            self.named.close()
        finally:
            self.manager.close()


def load_best_model(path: Path, device: torch.device | str = "cpu"
                    ) -> dict[str, torch.Tensor] | None:
    """The weights of ``<name>_best_model.pth`` after checking its hash against the run
    folder's manifest (None when the file does not exist); a damaged or unverifiable file is an
    error that says what to do."""
    if not path.is_file():
        return None
    try:
        NamedFiles(path.parent).check(path.name)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; the best weights cannot be trusted: restore the file "
                              "from a backup, or pass force=True to train again") from exc
    return read_state_dict(path, device)


def _link(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # never another writer's
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # no hard links here (some network or FAT filesystems): copy instead
        copy_file(source, target)
        return
    os.replace(tmp, target)
