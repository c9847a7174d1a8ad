"""The reference script's API, with its names and signatures, on top of :func:`loopwise.fit`.

```python
from loopwise.train.reference import (load_and_preprocess_data, setup_training, train_model)

X, Y, stats = load_and_preprocess_data("training_data.h5")
train_loader, val_loader, test_loader = setup_training(X, Y, batch_size=64)
model, train_losses, val_losses, test_loss = train_model(
    train_loader, val_loader, test_loader, X.shape[1], Y.shape[1], config=config)
```

``train_model`` trains the reference's MLP regressor (``hidden_size`` x ``num_layers``, ReLU,
dropout) with MSE and AdamW, in the run folder ``<root>/<config.model_name>`` with the
reference's files (see :mod:`loopwise.train.fit.files`). Running it again with the same config
returns the saved result instead of training again (an interrupted run resumes) unless
``force=True``.

Also here, from their own modules: ``load_and_preprocess_data``, ``setup_training``
(:mod:`~loopwise.train.fit.prep`), ``extract_final_predictions``
(:mod:`~loopwise.train.fit.predict`), ``load_state_dict_safely``
(:mod:`~loopwise.checkpoint.weights`), ``clear_gpu_memory``, ``show_gpu_memory_usage``
(:mod:`~loopwise.train.step.memory`), ``setup_logging`` (:mod:`~loopwise.train.fit.logsetup`),
``plot_losses`` and ``plot_predictions`` (:mod:`loopwise.view.plots`), and
``save_training_config`` / ``load_training_config``.

And the reference's helpers for skipping done work, answered from the files ``train_model``
writes (:mod:`loopwise.train.fit.files`) by the rule its rerun uses
(:mod:`loopwise.train.fit.runplan`):
``check_existing_model_files(model_name)`` (the run finished: a rerun would return the saved
result) and ``check_existing_plots(model_name)`` (both PNGs are there); and
:class:`TrainingMetrics`, the per-epoch losses, learning rates and times with the best epoch and
the total time (``TrainingMetrics.from_result(result)`` reads them off a fit's result).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loopwise.checkpoint.weights import load_state_dict_safely
from loopwise.record.recorder import TrainingRun
from loopwise.train.callbacks import Callback
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import FitResult, fit
from loopwise.train.fit.files import BEST_MODEL, LOSS_PLOT, PREDICTIONS_PLOT, fit_file
from loopwise.train.fit.logsetup import setup_logging
from loopwise.train.fit.predict import extract_final_predictions, plot_predictions
from loopwise.train.fit.prep import Standardization, load_and_preprocess_data, setup_training
from loopwise.train.fit.runplan import is_finished
from loopwise.train.step.memory import clear_gpu_memory, show_gpu_memory_usage
from loopwise.utils.validate import check_int
from loopwise.view.plots import plot_losses
from loopwise.watch.convert import to_float
from loopwise.watch.improvement import Improvement

__all__ = [
    "MLP", "Standardization", "TrainingConfig", "TrainingMetrics", "build_mlp",
    "check_existing_model_files", "check_existing_plots", "clear_gpu_memory",
    "extract_final_predictions", "load_and_preprocess_data", "load_state_dict_safely",
    "load_training_config", "plot_losses", "plot_predictions", "save_training_config",
    "setup_logging", "setup_training", "show_gpu_memory_usage", "train_model",
    "train_model_result",
]


class MLP(nn.Module):
    """The reference's regressor: ``num_layers`` x (Linear, ReLU, Dropout), then a Linear head."""

    def __init__(self, input_dim: int, output_dim: int, hidden_size: int = 256,
                 num_layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_int(value, what=name, minimum=1)
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        layers.append(nn.Linear(width, output_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def build_mlp(input_dim: int, output_dim: int, config: TrainingConfig) -> MLP:
    """The reference MLP sized by ``config`` (hidden_size, num_layers, dropout), seeded."""
    torch.manual_seed(config.seed)
    return MLP(input_dim, output_dim, config.hidden_size, config.num_layers, config.dropout)


def save_training_config(config: TrainingConfig, path: str | Path) -> Path:
    """The reference's ``save_training_config``: ``config.save(path)``."""
    return config.save(path)


def load_training_config(path: str | Path) -> TrainingConfig:
    """The reference's ``load_training_config``: ``TrainingConfig.load(path)``."""
    return TrainingConfig.load(path)


def train_model_result(train_loader: Iterable[Any], val_loader: Iterable[Any] | None,
                       test_loader: Iterable[Any] | None, input_dim: int, output_dim: int,
                       config: TrainingConfig | None = None, *,
                       loss_fn: Callable[..., torch.Tensor] | None = None,
                       root: str | Path = "runs", force: bool = False,
                       callbacks: Sequence[Callback] = (),
                       normalization: Standardization | None = None,
                       metadata: Mapping[str, Any] | None = None, plots: bool = True,
                       progress: bool = True, system: bool | float = True) -> FitResult:
    """:func:`train_model` returning the whole :class:`~loopwise.train.fit.entry.FitResult`.

    ``loss_fn`` defaults to MSE (the reference's regressor); pass
    ``torch.nn.CrossEntropyLoss()`` with ``output_dim`` = classes for a classifier.
    ``normalization`` (from ``load_and_preprocess_data``) is saved with the run.
    """
    cfg = config if config is not None else TrainingConfig()
    if not isinstance(cfg, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig or None, got {type(cfg).__name__}")
    model = build_mlp(input_dim, output_dim, cfg)
    info: dict[str, Any] = dict(metadata or {})
    info.update(input_dim=input_dim, output_dim=output_dim)
    if normalization is not None:
        info["normalization"] = normalization.to_dict()
    return fit(model, train_loader, loss_fn=loss_fn if loss_fn is not None else nn.MSELoss(),
               val_loader=val_loader, test_loader=test_loader, config=cfg,
               callbacks=callbacks, root=root, name=cfg.model_name, force=force,
               metadata=info, plots=plots, progress=progress, system=system)


def train_model(train_loader: Iterable[Any], val_loader: Iterable[Any] | None,
                test_loader: Iterable[Any] | None, input_dim: int, output_dim: int,
                config: TrainingConfig | None = None, **options: Any
                ) -> tuple[nn.Module, list[float], list[float], float | None]:
    """Train the reference MLP; returns ``(model, train_losses, val_losses, test_loss)``.

    The model holds the best weights (lowest validation loss); ``test_loss`` is None without
    a test loader. ``options`` are those of :func:`train_model_result` (``root``, ``force``,
    ``loss_fn``, ``callbacks``, ``normalization``, ``plots``, ``progress``, ``system``).
    """
    result = train_model_result(train_loader, val_loader, test_loader, input_dim, output_dim,
                                config, **options)
    return result.model, result.train_losses, result.val_losses, result.test_loss


# -- skipping done work -----------------------------------------------------------------------
def _run_folder(model_name: object, root: object) -> Path:
    from loopwise.record import validate_run_name

    validate_run_name(model_name, what="model_name")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path, got {type(root).__name__}")
    return Path(root) / str(model_name)


def check_existing_model_files(model_name: str = "improved_model", *,
                               root: str | os.PathLike[str] = "runs") -> bool:
    """True when ``train_model`` with this ``model_name`` (under ``root``) has finished: its
    result and best weights are in ``<root>/<model_name>/``, and a rerun with the same config
    returns them instead of training again."""
    folder = _run_folder(model_name, root)
    return is_finished(folder, model_name) and fit_file(folder, model_name, BEST_MODEL).is_file()


def check_existing_plots(model_name: str = "improved_model", *,
                         root: str | os.PathLike[str] = "runs") -> bool:
    """True when both plots ``train_model`` draws at the end are in ``<root>/<model_name>/``:
    ``<model_name>_loss_analysis.png`` and ``<model_name>_predictions.png``."""
    folder = _run_folder(model_name, root)
    return all(fit_file(folder, model_name, s).is_file() for s in (LOSS_PLOT, PREDICTIONS_PLOT))


# -- per-epoch metrics ---------------------------------------------------------------------------
def _number(value: object, what: str) -> float:
    return to_float(what, value, what=what)  # once an epoch: reading a value is fine here


class TrainingMetrics:
    """Seed 003's training metrics: per epoch the training and validation loss, the learning
    rate and the epoch's seconds; the best epoch (lowest validation loss, the one rule of
    :class:`~loopwise.watch.improvement.Improvement`) and the total time.

    ``update(epoch, train_loss, val_loss=None, lr=None, epoch_time=None)`` adds one epoch and
    returns whether it is the new best. With ``run=`` (a :class:`loopwise.record.Run`) each
    epoch is also recorded as the epoch summary ``docs/record.md`` names: ``epoch/loss``,
    ``epoch/val_loss``, ``epoch/lr``, ``epoch/seconds``.
    """

    def __init__(self, *, run: TrainingRun | None = None) -> None:
        if run is not None and not callable(getattr(run, "log_epoch", None)):
            raise TypeError(f"run must be a loopwise Run (with log_epoch), got "
                            f"{type(run).__name__}")
        self.run = run
        self.epochs: list[int] = []
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []
        self.learning_rates: list[float] = []
        self.epoch_times: list[float] = []
        self._best = Improvement(mode="min", monitor="val_loss")

    def update(self, epoch: int, train_loss: float, val_loss: float | None = None,
               lr: float | None = None, epoch_time: float | None = None) -> bool:
        """Add epoch ``epoch``'s values; True when its validation loss is the best so far."""
        check_int(epoch, what="epoch", minimum=1)
        if self.epochs and epoch <= self.epochs[-1]:
            raise ValueError(f"epoch {epoch} is not after the last epoch added "
                             f"({self.epochs[-1]}): epochs must increase (start a new "
                             "TrainingMetrics for a new run)")
        values = {"loss": _number(train_loss, "train_loss")}
        for key, value in (("val_loss", val_loss), ("lr", lr), ("seconds", epoch_time)):
            if value is not None:
                values[key] = _number(value, key)
        self.epochs.append(epoch)
        self.train_losses.append(values["loss"])
        if "val_loss" in values:
            self.val_losses.append(values["val_loss"])
        if "lr" in values:
            self.learning_rates.append(values["lr"])
        if "seconds" in values:
            self.epoch_times.append(values["seconds"])
        if self.run is not None:
            self.run.log_epoch(epoch, values)
        return "val_loss" in values and self._best.update(values["val_loss"], epoch)

    @property
    def best_epoch(self) -> int | None:
        return self._best.best_step

    @property
    def best_val_loss(self) -> float | None:
        return self._best.best

    @property
    def total_time(self) -> float:
        """Seconds of all epochs added with an ``epoch_time``."""
        return float(sum(self.epoch_times))

    def get_summary(self) -> dict[str, Any]:
        """The training summary: epochs, best epoch and validation loss, final losses, time."""
        return {"epochs": len(self.epochs), "best_epoch": self.best_epoch,
                "best_val_loss": self.best_val_loss,
                "final_train_loss": self.train_losses[-1] if self.train_losses else None,
                "final_val_loss": self.val_losses[-1] if self.val_losses else None,
                "final_lr": self.learning_rates[-1] if self.learning_rates else None,
                "total_time_s": self.total_time}

    @classmethod
    def from_result(cls, result: FitResult) -> TrainingMetrics:
        """The metrics of a finished (or skipped) fit, from its per-epoch history."""
        if not isinstance(result, FitResult):
            raise TypeError(f"result must be a FitResult (what train_model_result and fit "
                            f"return), got {type(result).__name__}")
        metrics = cls()
        for row in result.history:
            metrics.update(int(row["epoch"]), row["loss"], row.get("val_loss"), row.get("lr"),
                           row.get("epoch_time_s"))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "train_losses": list(self.train_losses),
                "val_losses": list(self.val_losses), "learning_rates": list(self.learning_rates),
                "epoch_times": list(self.epoch_times), "best": self._best.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        keys = ("epochs", "train_losses", "val_losses", "learning_rates", "epoch_times", "best")
        missing = [k for k in keys if k not in state]
        if missing:
            raise KeyError(f"TrainingMetrics state is missing {', '.join(map(repr, missing))}; "
                           "was it saved by TrainingMetrics.state_dict()?")
        self.epochs = [int(e) for e in state["epochs"]]
        self.train_losses = [float(v) for v in state["train_losses"]]
        self.val_losses = [float(v) for v in state["val_losses"]]
        self.learning_rates = [float(v) for v in state["learning_rates"]]
        self.epoch_times = [float(v) for v in state["epoch_times"]]
        self._best.load_state_dict(dict(state["best"]))
