"""loopwise: make any PyTorch training run observable, recoverable and comparable.

Public names are imported lazily, so ``import loopwise`` stays cheap and importing the record
readers never pulls in torch.
"""

from __future__ import annotations

from typing import Any

from loopwise.utils.lazy import lazy_names

__version__ = "0.1.0"

_PUBLIC = {
    "Run": "loopwise.record.run",
    "RunReader": "loopwise.record.reader",
    "list_runs": "loopwise.record.reader",
    "TrainingMonitor": "loopwise.watch.monitor",
    "ProgressBar": "loopwise.watch.progress",
    "TrainingSession": "loopwise.watch.session",
    "summary": "loopwise.watch.summary",
    "SystemMonitor": "loopwise.watch.system",
    "Trainer": "loopwise.train.workflow.trainer",
    "Workflow": "loopwise.train.workflow.runner",
    "CheckpointManager": "loopwise.checkpoint.manager",
    "EarlyStopping": "loopwise.train.callbacks",
    "ReduceLROnPlateau": "loopwise.train.callbacks",
    "TrainingConfig": "loopwise.train.fit.config",
    "fit": "loopwise.train.fit.entry",
    "train_model": "loopwise.train.reference",
    "TrainingMetrics": "loopwise.train.reference",
    "check_existing_model_files": "loopwise.train.reference",
    "check_existing_plots": "loopwise.train.reference",
}

__all__ = [*sorted(_PUBLIC), "__version__"]


_lazy, __dir__ = lazy_names(__name__, _PUBLIC, listed=__all__)


def __getattr__(name: str) -> Any:  # a def: type checkers read ``loopwise.X`` as Any
    return _lazy(name)
