"""Model outputs to predictions: ``extract_final_predictions`` and ``collect_predictions``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from loopwise.utils.validate import check_int
from loopwise.view.plots import check_stride, render_predictions, require_matplotlib

OUTPUT_KEYS = ("predictions", "logits", "output", "out")


def extract_final_predictions(model_output: Any, output_dim: int) -> torch.Tensor:
    """The final predictions in ``model_output`` as a (batch, output_dim) tensor.

    Accepts a tensor, a tuple/list whose first element is the prediction (models returning
    ``(prediction, extra)``) or a dict with one of the keys ``predictions``, ``logits``,
    ``output``, ``out``. A sequence output (batch, time, output_dim) gives its last time step;
    a (batch,) output is read as one column.
    """
    check_int(output_dim, what="output_dim", minimum=1)
    out = model_output
    if isinstance(out, Mapping):
        key = next((k for k in OUTPUT_KEYS if k in out), None)
        if key is None:
            raise ValueError(f"model output dict has no prediction key; expected one of "
                             f"{', '.join(OUTPUT_KEYS)}, got {', '.join(map(str, out))}")
        out = out[key]
    elif isinstance(out, (tuple, list)):
        if not out:
            raise ValueError("model output is an empty tuple/list: no predictions in it")
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model output must be a tensor (or hold one), got {type(out).__name__}")
    if out.dim() == 1:
        out = out.unsqueeze(1)
    elif out.dim() >= 3:
        out = out.reshape(out.shape[0], -1, out.shape[-1])[:, -1, :]
    if out.shape[-1] != output_dim:
        raise ValueError(f"model output has {out.shape[-1]} values per example but "
                         f"output_dim is {output_dim} (output shape {tuple(out.shape)})")
    return out


def collect_predictions(model: torch.nn.Module, loader: Iterable[Any], output_dim: int, *,
                        device: torch.device | str | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``loader`` of (inputs, targets) batches; return (predictions, targets).

    The model's train/eval mode is restored afterwards. Both results are float32 on the CPU
    (targets keep an integer dtype for class labels).
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise TypeError("the loader must yield (inputs, targets) batches")
                *inputs, target = batch
                output = model(*(x.to(device) for x in inputs))
                preds.append(extract_final_predictions(output, output_dim).float().cpu())
                targets.append(target.cpu())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("the loader yielded no batches: nothing to predict")
    return torch.cat(preds), torch.cat(targets)


def plot_predictions(model: torch.nn.Module, val_loader: Iterable[Any], output_dim: int,
                     stride: int = 10, model_name: str = "improved_model", *,
                     out_dir: str | Path = ".", path: str | Path | None = None,
                     device: Any = None, max_outputs: int = 4) -> Path:
    """Predictions against targets on ``val_loader``; writes ``<model_name>_predictions.png``.

    Regression: for each of the first ``max_outputs`` outputs, predicted vs actual (with the
    y = x line and R²) and the two series over every ``stride``-th example. Classification
    (integer targets, ``output_dim`` > 1 logits): the confusion matrix and the accuracy.
    Drawing is :func:`loopwise.view.plots.render_predictions`.
    """
    check_stride(stride)
    require_matplotlib()  # fail early, before running the model, when matplotlib is missing
    preds, actual = collect_predictions(model, val_loader, output_dim, device=device)
    return render_predictions(preds, actual, output_dim, stride, model_name, out_dir=out_dir,
                              path=path, max_outputs=max_outputs)
