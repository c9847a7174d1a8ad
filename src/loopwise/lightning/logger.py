"""``LoopwiseLogger``: a PyTorch Lightning logger writing the run record
(``pip install 'loopwise[lightning]'``); with :class:`~loopwise.lightning.LoopwiseCallback` it
also gets loopwise's bar, the system sampler, health findings and every step's values.

```python
import lightning.pytorch as L
from loopwise.lightning import LoopwiseCallback, LoopwiseLogger

trainer = L.Trainer(max_epochs=5, logger=LoopwiseLogger(name="mnist"),
                    callbacks=[LoopwiseCallback()])
trainer.fit(model, train_loader, val_loader)
```

Names follow ``docs/record.md``: a value Lightning logs per step is recorded under its name
(``loss_step`` -> ``loss``) at the global step (Lightning counts from 0, the record from 1);
an epoch value (``loss_epoch``, and everything logged during validation: ``val_loss``) becomes
``epoch/<name>`` / ``epoch/val_<name>`` at the step where the epoch ended; ``trainer.test``
values ``test/<name>``. The hyperparameters go to ``config.json``; ``finalize`` sets the run's
status (``finished``; ``failed``; ``interrupted`` for Ctrl-C). The classes derive from both
``lightning.pytorch`` and ``pytorch_lightning`` bases when both are installed, so either import
style works.
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Iterable, Mapping
from typing import Any

from loopwise.record.opening import reopen_run
from loopwise.record.reader import RunReader
from loopwise.record.recorder import Recorder
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.watch.trainer_steps import (
    TrainerSteps,
    attach_exporters,
    check_options,
    end_trainer_run,
    json_config,
    open_run,
)

__all__ = ["PACKAGES", "LoopwiseLogger", "split_metrics"]


def _packages() -> list[Any]:
    found = []
    try:
        import lightning.pytorch as lightning_pytorch

        found.append(lightning_pytorch)
    except ImportError:
        pass
    try:
        import pytorch_lightning

        found.append(pytorch_lightning)
    except ImportError:
        pass
    if not found:
        raise ImportError("loopwise.lightning needs PyTorch Lightning: "
                          "pip install 'loopwise[lightning]'")
    return found


PACKAGES: tuple[Any, ...] = tuple(_packages())
_LOGGER_BASES: tuple[type, ...] = tuple(p.loggers.Logger for p in PACKAGES)


def split_metrics(metrics: Mapping[str, float], *, validating: bool = False,
                  ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Lightning's logged names -> the record's: ``(per-step values, epoch values, test
    values)``. ``x_step`` is the per-step ``x``; ``x_epoch`` the epoch's ``x``; a value logged
    during validation (or named ``val_x`` / ``val/x``) the epoch's ``val_x``; ``test_x`` /
    ``test/x`` ``x`` of the test set; ``epoch`` (Lightning's epoch index) is left out."""
    step: dict[str, float] = {}
    epoch: dict[str, float] = {}
    test: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "epoch":
            continue
        name, is_epoch = key, False
        if name.endswith("_step"):
            name = name[:-5]
        elif name.endswith("_epoch"):
            name, is_epoch = name[:-6], True
        if name.startswith(("test_", "test/")):
            test[name[5:]] = value
            continue
        if name.startswith("val/"):
            name = "val_" + name[4:]
        if validating and not name.startswith("val_"):
            name = "val_" + name
        if name.startswith("val_") or is_epoch:
            epoch[name] = value
        else:
            step[name] = value
    return step, epoch, test


def _at_epoch_end(trainer: Any) -> bool:
    """Whether the trainer's training epoch has run its last batch (a validation then is the
    epoch's)."""
    progress = getattr(getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None),
                       "batch_progress", None)
    return bool(getattr(progress, "is_last_batch", True))


class LoopwiseLogger(*_LOGGER_BASES):  # type: ignore[misc]
    """A Lightning ``Logger`` recording into a loopwise run; see the module doc.

    ``run``: the run to write to (never closed by the logger); else one is made under
    ``root``/``name`` when Lightning first logs (or, resuming from a checkpoint a
    :class:`LoopwiseCallback` wrote, that checkpoint's run is reopened). ``config`` is added to
    the hyperparameters in ``config.json``. ``exporters`` mirror the run (TensorBoard, MLflow,
    Prometheus: ``loopwise.export``). ``health``: feed the run's health detectors.
    ``flush_interval``: seconds between hand-overs of the per-step values to the run.
    """

    def __init__(self, *, root: str | os.PathLike[str] = "runs", name: str | None = None,
                 run: Run | None = None, config: Mapping[str, Any] | None = None,
                 exporters: Iterable[Recorder] = (), health: bool = True,
                 flush_interval: float = 1.0) -> None:
        super().__init__()
        self._exporters = check_options(run=run, root=root, name=name, config=config,
                                        flush_interval=flush_interval, exporters=exporters)
        if not isinstance(health, bool):
            raise TypeError(f"health must be True or False, got {health!r}")
        self._given_run, self._run = run, run
        self._root, self._name = root, name
        self._config = json_config(config or {})
        self._health, self._interval = health, float(flush_interval)
        self._steps: TrainerSteps | None = None
        self.previous: str | None = None  # a checkpoint's run, to continue (set on resume)
        self.resuming = False
        self.trainer: Any = None  # set by LoopwiseCallback: phases and per-step values
        self.epoch_values: dict[str, float] = {}  # the last epoch's values logged through here

    # -- Lightning's Logger interface -----------------------------------------------------------
    @property
    def name(self) -> str:
        if self._run is not None:
            return self._run.name
        return self._name or "loopwise"

    @property
    def version(self) -> str:
        return "" if self._run is None else self._run.id

    @property
    def save_dir(self) -> str | None:
        return None  # checkpoints go where Lightning puts them without a logger

    @property
    def experiment(self) -> Run | None:
        """The loopwise run, once Lightning logged to it (None before: Lightning reads this
        before it restores a checkpoint, which may name the run to continue)."""
        return self._run

    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None, *args: Any,
                        **kwargs: Any) -> None:
        if params is None:
            return
        if isinstance(params, Namespace):
            params = vars(params)
        if not isinstance(params, Mapping):
            raise TypeError(f"hyperparameters must be a dict or Namespace, got "
                            f"{type(params).__name__}")
        run = self._live()
        run.set_config({**RunReader(run.path).config(), **json_config(params), **self._config})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        run = self._live()
        steps, trainer = self.steps, self.trainer
        validating = bool(trainer is not None and getattr(trainer, "validating", False)
                          and not getattr(trainer, "training", False))
        per_step, per_epoch, test = split_metrics(metrics, validating=validating)
        if trainer is not None and getattr(trainer, "testing", False):
            test = {**test, **per_step, **per_epoch}
            per_step, per_epoch = {}, {}
        at = run.global_step if step is None else int(step) + 1  # Lightning counts from 0
        if trainer is not None:
            at = int(trainer.global_step)  # with the callback: the trainer's own count
        if per_step and trainer is None:  # the callback records every step itself
            steps.add(at, per_step)
        if per_epoch and validating and not _at_epoch_end(trainer):
            steps.flush()  # a validation inside the epoch (val_check_interval < 1): at its step
            run.log_scalars(per_epoch, step=at)
            per_epoch = {}
        if per_epoch:
            steps.flush()
            epoch = int(metrics.get("epoch", run.epoch)) + 1
            self.epoch_values.update(per_epoch)
            run.log_epoch(epoch, per_epoch, step=at)
            if steps.health is not None:
                steps.health.observe_epoch(epoch, per_epoch)
        if test:
            steps.flush()
            run.log_scalars({f"test/{k}": float(v) for k, v in test.items()}, step=at)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        path = getattr(checkpoint_callback, "_last_checkpoint_saved", "") or getattr(
            checkpoint_callback, "last_model_path", "") or getattr(
            checkpoint_callback, "best_model_path", "")
        run = self._live()
        step = run.global_step if self.trainer is None else int(self.trainer.global_step)
        run.log_event("checkpoint_saved", f"step {step}: {os.path.basename(str(path))}",
                      data={"file": str(path), "step": step, "epoch": run.epoch})

    def save(self) -> None:
        """Lightning calls this often: the run's own writer thread flushes."""

    def finalize(self, status: str) -> None:
        """Lightning's end of fit (``success``) or failure (``failed``; Ctrl-C reads as
        ``interrupted``): the run made by the logger is closed with that status (a later
        ``trainer.test`` reopens it); a given run is only flushed."""
        if status == "success":
            self.close("finished")
            return
        exc_type, exc, tb = sys.exc_info()
        outcome, error = exit_status(exc_type, exc, tb) if exc_type else ("failed", None)
        self.close("failed" if outcome == "finished" else outcome, error=error)

    # -- the run ---------------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        """The run, opened on first use (after :meth:`finalize`: the closed run)."""
        return self._run if self._run is not None else self._open()

    def _live(self) -> Run:
        """The run to log to: a stage logging after fit's end (``trainer.test``) continues
        the same run (reopened)."""
        run = self._run
        if run is None:
            return self._open()
        if not run.closed:
            return run
        if self._given_run is not None:
            raise ValueError(f"run {self._given_run.name!r} is closed; pass an open run")
        self._run = reopen_run(run.path)
        self._steps = None
        return self._run

    def _open(self) -> Run:
        run = self._run = open_run(previous=self.previous, root=self._root, name=self._name,
                                   config=self._config, resuming=self.resuming)
        attach_exporters(run, self._exporters)
        return run

    @property
    def opened(self) -> bool:
        return self._run is not None and not self._run.closed

    @property
    def steps(self) -> TrainerSteps:
        """The per-step hand-over to the run (made with the run)."""
        run = self.run
        if self._steps is None or self._steps.run is not run:
            self._steps = TrainerSteps(run, health=self._health, interval=self._interval)
        return self._steps

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Hand over what is pending and close the run the logger made with ``status``."""
        end_trainer_run(self._run, self._steps, status, error=error,
                        own=self._run is not self._given_run)

    def state_dict(self) -> dict[str, Any]:
        return {"run": None if self._run is None else str(self._run.path)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "run" not in state:
            raise KeyError("LoopwiseLogger state is missing 'run'")
        self.previous = None if state["run"] is None else str(state["run"])
        self.resuming = True
