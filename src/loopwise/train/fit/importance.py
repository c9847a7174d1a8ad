"""Permutation feature importance of a fitted model on tabular validation data, recorded at the
end of ``fit`` as a text table (``feature_importance``) and a bar chart image.

Tabular: every batch is ``(x, y)`` with ``x`` a 2-D floating tensor of at most
``MAX_FEATURES`` columns; the first ``MAX_ROWS`` rows are used. The importance of feature ``j``
is how much the loss grows when column ``j`` is shuffled (breaking its link to the target,
keeping its distribution), averaged over ``REPEATS`` shuffles with a fixed seed; its spread is
the standard deviation of those shuffles. 0 means the model does not use the feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from loopwise.train.step.engine import unpack
from loopwise.watch.convert import to_float

MAX_ROWS = 50_000
MAX_FEATURES = 200
REPEATS = 3
CHUNK = 8192


@dataclass(frozen=True)
class Importance:
    feature: str
    mean: float  # loss increase when the feature is shuffled
    std: float


def tabular(loader: Iterable[Any], *, max_rows: int = MAX_ROWS
            ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The loader's first ``max_rows`` rows as ``(X, y)``, or None when it is not tabular."""
    xs, ys, rows = [], [], 0
    for batch in loader:
        inputs, target = unpack(batch)
        if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor):
            return None
        x = inputs[0]
        if x.dim() != 2 or not x.is_floating_point() or x.shape[1] > MAX_FEATURES:
            return None
        xs.append(x.detach().cpu())
        ys.append(target.detach().cpu())
        rows += x.shape[0]
        if rows >= max_rows:
            break
    if not xs:
        return None
    return torch.cat(xs)[:max_rows], torch.cat(ys)[:max_rows]


def _loss(model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor], x: torch.Tensor,
          y: torch.Tensor, device: torch.device) -> float:
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(x), CHUNK):
        xb, yb = x[start:start + CHUNK].to(device), y[start:start + CHUNK].to(device)
        total += loss_fn(model(xb), yb).double() * len(xb)
    return to_float("loss", total) / len(x)  # one read per pass, after training


def permutation_importance(model: torch.nn.Module, loader: Iterable[Any],
                           loss_fn: Callable[..., torch.Tensor], *, device: torch.device,
                           names: Sequence[str] | None = None, repeats: int = REPEATS,
                           seed: int = 0) -> list[Importance] | None:
    """Each feature's importance (see the module doc), most important first; None when the
    data is not tabular."""
    data = tabular(loader)
    if data is None:
        return None
    x, y = data
    n_features = x.shape[1]
    labels = list(names) if names is not None and len(names) == n_features else [
        f"x{j}" for j in range(n_features)]
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            base = _loss(model, loss_fn, x, y, device)
            for j in range(n_features):
                grown = []
                for _ in range(repeats):
                    shuffled = x.clone()
                    shuffled[:, j] = x[torch.randperm(len(x), generator=gen), j]
                    grown.append(_loss(model, loss_fn, shuffled, y, device) - base)
                mean = sum(grown) / len(grown)
                std = math.sqrt(sum((g - mean) ** 2 for g in grown) / len(grown))
                out.append(Importance(labels[j], mean, std))
    finally:
        model.train(was)
    return sorted(out, key=lambda i: -i.mean)


def importance_table(found: Sequence[Importance]) -> str:
    """A fixed-width text table: rank, feature, loss increase, spread."""
    width = max([len(i.feature) for i in found] + [7])
    lines = [f"{'rank':>4}  {'feature':<{width}}  {'loss increase':>13}  {'+-':>9}"]
    for rank, imp in enumerate(found, 1):
        lines.append(f"{rank:>4}  {imp.feature:<{width}}  {imp.mean:>13.5g}  {imp.std:>9.3g}")
    return "\n".join(lines)
