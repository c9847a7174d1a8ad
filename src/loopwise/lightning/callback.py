"""``LoopwiseCallback`` for PyTorch Lightning (``pip install 'loopwise[lightning]'``): loopwise's
progress bar in place of Lightning's (it is the trainer's progress-bar callback), every step's
values at the global step without a device sync (the loss and what ``training_step`` logs with
``self.log``, kept as tensors and read at the refresh), the learning rate, the epoch summaries
(``epoch/loss``, ``epoch/lr``, ``epoch/seconds``), the system sampler, the health detectors, the
checkpoints Lightning saves and resumes from (``checkpoint_saved``, ``checkpoint_loaded``,
continuing the same run without a step twice) and the run's status when fit raises
(``failed``) or is stopped with Ctrl-C (``interrupted``). It records through the trainer's
:class:`~loopwise.lightning.logger.LoopwiseLogger`.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.lightning.logger import PACKAGES, LoopwiseLogger
from loopwise.watch.epoch_summary import EpochResult, render_epoch_summary
from loopwise.watch.progress import ProgressBar
from loopwise.watch.system_run import ensure_system_monitor

__all__ = ["LoopwiseCallback"]

_BAR_BASES: tuple[type, ...] = tuple(p.callbacks.ProgressBar for p in PACKAGES)


class StepLogged:
    """What ``training_step`` logged with ``self.log(..., on_step=True)`` at this step, as
    Lightning holds it (tensors: nothing is read here); ``x_step`` is named ``x``. The training
    results are looked up once per epoch and the logged names again only when their number
    changes, so a step costs a dict of the values."""

    def __init__(self) -> None:
        self._results: Any = None
        self._count = -1
        self._items: list[tuple[str, Any]] = []

    def start_epoch(self, trainer: Any) -> None:
        self._results = getattr(trainer, "_results", None)
        self._count = -1

    def values(self) -> dict[str, Any]:
        results = self._results
        if results is None:
            return {}
        if len(results) != self._count:
            self._count = len(results)
            self._items = []
            for _, metric in results.items():
                if metric.meta.on_step and metric.meta.logger:
                    name = results._forked_name(metric, True)[1]
                    self._items.append((name[:-5] if name.endswith("_step") else name, metric))
        values: dict[str, Any] = {}
        for name, metric in self._items:
            value = metric._forward_cache
            if value is not None and not metric.has_reset:
                values[name] = value.detach()
        return values


def learning_rates(trainer: Any) -> dict[str, float]:
    """The first optimizer's learning rate: ``lr`` (``lr/<group>`` for several groups)."""
    optimizers = getattr(trainer, "optimizers", None) or []
    if not optimizers:
        return {}
    groups = optimizers[0].param_groups
    if len(groups) == 1:
        return {"lr": float(groups[0]["lr"])}
    return {f"lr/{i}": float(g["lr"]) for i, g in enumerate(groups)}


class LoopwiseCallback(*_BAR_BASES):  # type: ignore[misc]
    """Add to ``Trainer(callbacks=[...])`` beside ``logger=LoopwiseLogger(...)``; see the
    module doc. ``progress``: draw the bar and the epoch summaries on ``file`` (default
    stderr). ``system``: sample the machine (every 2 s) into the run."""

    def __init__(self, *, progress: bool = True, file: TextIO | None = None,
                 system: bool = True) -> None:
        super().__init__()
        for flag, value in (("progress", progress), ("system", system)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
        self._progress, self._file, self._system = progress, file, system
        self._enabled = True
        self._logger: LoopwiseLogger | None = None
        self._bar: ProgressBar | None = None
        self._last_step = -1
        self._lrs: dict[str, float] = {}
        self._epoch_start = 0.0
        self._logged = StepLogged()

    # -- Lightning's ProgressBar interface -------------------------------------------------------
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._progress and self._enabled

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        tqdm.write(sep.join(map(str, args)), file=self._file or sys.stderr)

    # -- hooks -----------------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        found = [lg for lg in getattr(trainer, "loggers", []) if isinstance(lg, LoopwiseLogger)]
        if not found:
            raise ValueError("LoopwiseCallback records through a LoopwiseLogger: pass "
                             "Trainer(logger=LoopwiseLogger(...), callbacks=[LoopwiseCallback()])")
        self._logger = found[0]
        self._logger.trainer = trainer
        if getattr(trainer, "ckpt_path", None):
            self._logger.resuming = True

    def state_dict(self) -> dict[str, Any]:
        logger = self._logger
        return {} if logger is None else logger.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if self._logger is not None and "run" in state_dict:
            self._logger.load_state_dict(state_dict)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        logger = self._need_logger()
        run, steps = logger.run, logger.steps
        step = int(trainer.global_step)
        run.set_config({**_trainer_config(trainer, pl_module), **_read_config(run)})
        if step > 0 or logger.resuming:
            steps.start_at(step, epoch=int(trainer.current_epoch))
            run.log_event("checkpoint_loaded", f"resumed at epoch {trainer.current_epoch}, "
                          f"step {step}", data={"epoch": int(trainer.current_epoch),
                                                "step": step, "file": str(trainer.ckpt_path)})
        else:
            steps.start_at(max(step, run.global_step), epoch=run.epoch)
        self._last_step = step
        if self._system:
            ensure_system_monitor(run, loop_stats=steps)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        steps = self._need_logger().steps
        steps.reset_means()
        self._lrs = {}
        self._epoch_start = time.monotonic()
        self._logged.start_epoch(trainer)
        self._finish_bar()
        total = trainer.num_training_batches
        if self.is_enabled and isinstance(total, int):
            epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
            self._bar = ProgressBar(f"Epoch {trainer.current_epoch + 1}/{epochs} (Training)",
                                    total, file=self._file)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = int(trainer.global_step)
        bar = self._bar
        if step == self._last_step:  # accumulating gradients: no optimizer step yet
            if bar is not None:
                bar.update(min(batch_idx + 1, bar.total or batch_idx + 1))
            return
        self._last_step = step
        values = self._logged.values()
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None and "loss" not in values and hasattr(loss, "detach"):
            scale = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
            values["loss"] = loss if scale == 1 else loss * scale  # Lightning divides it
        lrs = learning_rates(trainer)
        changed = {k: v for k, v in lrs.items() if self._lrs.get(k) != v}
        if changed:
            self._lrs.update(changed)
            values.update(changed)
        logger = self._need_logger()
        logger.steps.add(step, values)
        if bar is not None:
            shown = {k: v for k, v in values.items() if not k.startswith("lr")}
            bar.update(min(batch_idx + 1, bar.total or batch_idx + 1), shown)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        logger = self._need_logger()
        run, steps = logger.run, logger.steps
        self._finish_bar()
        step = int(trainer.global_step)
        train = {k: v for k, v in steps.means().items() if not k.startswith("lr")}
        values = {**train, **self._lrs, "seconds": time.monotonic() - self._epoch_start}
        epoch = int(trainer.current_epoch) + 1
        run.log_epoch(epoch, values, step=step)
        val = {k[4:]: v for k, v in logger.epoch_values.items() if k.startswith("val_")}
        if steps.health is not None:
            steps.health.observe_epoch(epoch, {f"train_{k}": v for k, v in train.items()})
        epochs = int(trainer.max_epochs) if trainer.max_epochs and trainer.max_epochs > 0 \
            else epoch
        result = EpochResult(epoch, train, val or None,
                             train_steps=int(trainer.num_training_batches)
                             if isinstance(trainer.num_training_batches, int) else 0)
        text = render_epoch_summary(result, epochs)
        run.log_event("epoch_end", text.replace("\n", "; "), data={"epoch": epoch,
                                                                    "step": step})
        logger.epoch_values.clear()
        if self.is_enabled:
            tqdm.write("\n" + text + "\n", file=self._file or sys.stderr)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any,
                           checkpoint: dict[str, Any]) -> None:
        logger = self._need_logger()
        if logger.opened:
            logger.steps.flush()
            logger.run.flush()  # the record holds everything the checkpoint does

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._finish_bar()
        logger = self._logger
        if logger is not None and logger.opened:
            logger.steps.flush()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._finish_bar()
        logger = self._logger
        if logger is None or not logger.opened:
            return
        if isinstance(exception, KeyboardInterrupt):
            logger.close("interrupted")
        else:
            logger.close("failed", error="".join(traceback.format_exception(
                type(exception), exception, exception.__traceback__)))

    # -- internals -------------------------------------------------------------------------------
    def _need_logger(self) -> LoopwiseLogger:
        if self._logger is None:
            raise RuntimeError("LoopwiseCallback is not set up: pass it to Trainer(callbacks="
                               "[...]) with logger=LoopwiseLogger(...)")
        return self._logger

    def _finish_bar(self) -> None:
        if self._bar is not None:
            self._bar.finish()
            self._bar = None


def _read_config(run: Any) -> dict[str, Any]:
    from loopwise.record.reader import RunReader

    return RunReader(run.path).config()


def _trainer_config(trainer: Any, pl_module: Any) -> dict[str, Any]:
    """The trainer's settings a run is compared by (the user's hyperparameters win)."""
    params = sum(p.numel() for p in pl_module.parameters())
    return {"max_epochs": trainer.max_epochs, "max_steps": trainer.max_steps,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "precision": str(trainer.precision), "model": type(pl_module).__name__,
            "total_params": int(params)}
