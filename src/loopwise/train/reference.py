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
reference's files (see :mod:`loopwise.train.fitfiles`). Running it again with the same config
returns the saved result instead of training again (an interrupted run resumes) unless
``force=True``.

Also here, from their own modules: ``load_and_preprocess_data``, ``setup_training``
(:mod:`~loopwise.train.prep`), ``extract_final_predictions`` (:mod:`~loopwise.train.predict`),
``load_state_dict_safely`` (:mod:`~loopwise.train.weights`), ``clear_gpu_memory``,
``show_gpu_memory_usage`` (:mod:`~loopwise.train.memory`), ``setup_logging``
(:mod:`~loopwise.train.logsetup`), ``plot_losses`` and ``plot_predictions``
(:mod:`loopwise.view.plots`), and ``save_training_config`` / ``load_training_config``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loopwise.train.callbacks import Callback
from loopwise.train.config import TrainingConfig
from loopwise.train.fit import FitResult, fit
from loopwise.train.logsetup import setup_logging
from loopwise.train.memory import clear_gpu_memory, show_gpu_memory_usage
from loopwise.train.predict import extract_final_predictions, plot_predictions
from loopwise.train.prep import Standardization, load_and_preprocess_data, setup_training
from loopwise.train.weights import load_state_dict_safely
from loopwise.view.plots import plot_losses

__all__ = [
    "MLP", "Standardization", "TrainingConfig", "build_mlp", "clear_gpu_memory",
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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
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
    """:func:`train_model` returning the whole :class:`~loopwise.train.fit.FitResult`.

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
