"""What a Workflow epoch records: the ``history.csv`` row, the epoch summary (``epoch/<name>``,
``epoch/val_<name>``, ``epoch/lr``, ``epoch/seconds`` at the global step where it ended), the
``lr`` at its first step, the health monitor's epoch stream and the log line
(``docs/record.md``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from loopwise.record.recorder import TrainingRun
from loopwise.record.run import Run
from loopwise.train.callbacks.base import CallbackList
from loopwise.train.callbacks.lr_monitor import LearningRateMonitor
from loopwise.train.workflow.experiment import History
from loopwise.train.workflow.result import WorkflowResult
from loopwise.train.workflow.trainer import Trainer
from loopwise.watch.health.runner import ensure_health_monitor

_log = logging.getLogger("loopwise.train.workflow.runner")


def record_epoch(run: TrainingRun, history: History, trainer: Trainer, epoch: int, epochs: int,
                 metrics: dict[str, float], train_s: float, eval_s: float, *,
                 health: bool) -> None:
    """Record epoch ``epoch``'s ``metrics`` (training and ``val_`` values) and timings."""
    history.upsert({"epoch": float(epoch), **metrics, "train_seconds": train_s,
                    "eval_seconds": eval_s})
    # at the global step where the epoch ended (at step=epoch when train_loop never advances
    # it: docs/workflow.md), and a line in log.jsonl
    values = {**metrics, "train_seconds": train_s, "eval_seconds": eval_s,
              "seconds": train_s + eval_s}
    lr = learning_rate(trainer)
    if lr is not None:
        values["lr"] = lr
    run.log_epoch(epoch, values, step=run.global_step or epoch)
    if health and isinstance(run, Run):  # rank 0
        ensure_health_monitor(run).observe_epoch(epoch, metrics, step=run.global_step or None)
    shown = ", ".join(f"{k}={v:.6g}" for k, v in metrics.items() if math.isfinite(v))
    _log.info("epoch %d/%d: %s", epoch, epochs, shown)


def record_lr(run: TrainingRun, trainer: Trainer, callbacks: CallbackList, epoch: int) -> None:
    """``lr`` at the first step of the epoch; at step=epoch when train_loop never advances the
    global step. A LearningRateMonitor among the callbacks records it instead (every group)."""
    if any(isinstance(c, LearningRateMonitor) for c in callbacks):
        return
    lr = learning_rate(trainer)
    if lr is not None:
        run.log_scalars({"lr": lr}, step=max(run.global_step + 1, epoch))


def learning_rate(trainer: Trainer) -> float | None:
    """The learning rate of the trainer's optimizer (its first param group), if it has one."""
    groups = getattr(trainer.get_optimizer(), "param_groups", None)
    if not groups or "lr" not in groups[0]:
        return None
    try:
        return float(groups[0]["lr"])
    except (TypeError, ValueError):
        return None


def finished_result(folder: Path, done: int) -> WorkflowResult:
    """The result of an experiment that already finished (nothing to do): its history."""
    history = History(folder / "history.csv")
    history.load()
    return WorkflowResult(folder, "already_finished", done, history=history.rows)
