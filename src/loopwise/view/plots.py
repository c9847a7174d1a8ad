"""The reference's plots, as PNG files: ``plot_losses`` and ``plot_predictions``.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend change, safe
off the main thread), written atomically. matplotlib is imported inside the functions; without
it the error names the extra to install (``pip install 'loopwise[plots]'``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from loopwise.utils.validate import check_int

PLOTS_EXTRA = "plotting needs matplotlib: pip install 'loopwise[plots]'"


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(PLOTS_EXTRA) from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    from loopwise.utils.atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _target(path: str | Path | None, out_dir: str | Path, model_name: str, suffix: str) -> Path:
    if path is not None:
        return Path(path)
    if not isinstance(model_name, str) or not model_name or "/" in model_name:
        raise ValueError(f"model_name must be a non-empty name without '/', got {model_name!r}")
    folder = Path(out_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"out_dir {folder} is not a folder; create it first")
    return folder / f"{model_name}{suffix}"


def _numbers(values: Iterable[Any], what: str) -> list[float]:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of numbers, got a string")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(f"{what}[{i}] is not a number: {v!r}") from None
    return out


def plot_losses(train_losses: Sequence[float], val_losses: Sequence[float] = (),
                model_name: str = "improved_model", *, out_dir: str | Path = ".",
                path: str | Path | None = None) -> Path:
    """Loss curves (left) and the validation - training gap (right), per epoch.

    Writes ``<out_dir>/<model_name>_loss_analysis.png`` (or ``path``) and returns the path. The
    best validation epoch is marked; the loss axis is logarithmic when the losses are positive
    and span more than a factor of 20. NaN values leave gaps.
    """
    train = _numbers(train_losses, "train_losses")
    val = _numbers(val_losses, "val_losses")
    if not train:
        raise ValueError("train_losses is empty: train for at least one epoch before plotting")
    if val and len(val) != len(train):
        raise ValueError(f"val_losses has {len(val)} values but train_losses has {len(train)}; "
                         "give one value per epoch for both (or no validation losses)")
    target = _target(path, out_dir, model_name, "_loss_analysis.png")
    fig = _figure(11, 4.2)
    ax, gap_ax = fig.subplots(1, 2)
    epochs = list(range(1, len(train) + 1))
    ax.plot(epochs, train, label="training", color="tab:blue", marker="." if len(train) < 40
            else None)
    finite = [v for v in train + val if math.isfinite(v)]
    if val:
        ax.plot(epochs, val, label="validation", color="tab:orange",
                marker="." if len(val) < 40 else None)
        scored = [(v, i) for i, v in enumerate(val) if math.isfinite(v)]
        if scored:
            best, at = min(scored)
            ax.axvline(at + 1, color="tab:green", linestyle=":", linewidth=1)
            ax.scatter([at + 1], [best], color="tab:green", zorder=3,
                       label=f"best val {best:.4g} (epoch {at + 1})")
        gap = [v - t for v, t in zip(val, train, strict=True)]
        gap_ax.plot(epochs, gap, color="tab:red")
        gap_ax.axhline(0, color="gray", linewidth=0.8)
        gap_ax.set_title("Generalisation gap (validation - training)")
    else:
        gap_ax.text(0.5, 0.5, "no validation losses", ha="center", va="center",
                    transform=gap_ax.transAxes)
        gap_ax.set_title("Generalisation gap")
    if finite and min(finite) > 0 and max(finite) / min(finite) > 20:
        ax.set_yscale("log")
    ax.set_title(f"{model_name}: loss per epoch")
    for a in (ax, gap_ax):
        a.xaxis.get_major_locator().set_params(integer=True)
        a.set_xlabel("epoch")
        a.grid(True, alpha=0.3)
    ax.set_ylabel("loss")
    ax.legend()
    return _save(fig, target)


def check_stride(stride: object) -> int:
    return check_int(stride, what="stride", minimum=1)


def require_matplotlib() -> None:
    """Raise the error naming ``loopwise[plots]`` now when matplotlib is missing."""
    _figure(1, 1)


def render_predictions(preds: Any, actual: Any, output_dim: int, stride: int = 10,
                       model_name: str = "improved_model", *, out_dir: str | Path = ".",
                       path: str | Path | None = None, max_outputs: int = 4) -> Path:
    """Predictions (``preds``, rows x ``output_dim``) against targets (``actual``), already
    computed; writes ``<model_name>_predictions.png``. ``plot_predictions`` in
    :mod:`loopwise.train.fit.predict` runs a model over a loader and calls this.

    Regression: for each of the first ``max_outputs`` outputs, predicted vs actual (with the
    y = x line and R²) and the two series over every ``stride``-th example. Classification
    (integer targets, ``output_dim`` > 1 logits): the confusion matrix and the accuracy.
    """
    check_stride(stride)
    target = _target(path, out_dir, model_name, "_predictions.png")
    if not actual.is_floating_point() and output_dim > 1:
        return _confusion(preds, actual, output_dim, model_name, target)
    y = actual.reshape(len(actual), -1).float()
    if y.shape[1] != output_dim:
        raise ValueError(f"targets have {y.shape[1]} columns but output_dim is {output_dim}")
    shown = min(output_dim, max_outputs)
    fig = _figure(11, 3.6 * shown)
    axes = fig.subplots(shown, 2, squeeze=False)
    for k in range(shown):
        p, t = preds[:, k].tolist(), y[:, k].tolist()
        mean = sum(t) / len(t)
        ss_tot = sum((v - mean) ** 2 for v in t)
        ss_res = sum((a - b) ** 2 for a, b in zip(t, p, strict=True))
        r2 = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
        sc, series = axes[k]
        sc.scatter(t, p, s=8, alpha=0.6)
        lo, hi = min(t + p), max(t + p)
        sc.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1)
        sc.set_title(f"output {k}: predicted vs actual (R² = {r2:.3f})")
        sc.set_xlabel("actual")
        sc.set_ylabel("predicted")
        idx = list(range(0, len(t), stride))
        series.plot(idx, [t[i] for i in idx], label="actual", linewidth=1)
        series.plot(idx, [p[i] for i in idx], label="predicted", linewidth=1)
        series.set_title(f"output {k}: every {stride}th example")
        series.set_xlabel("example")
        series.legend()
    fig.suptitle(f"{model_name}: predictions on {len(y)} examples")
    return _save(fig, target)


def _confusion(preds: Any, actual: Any, n: int, model_name: str, target: Path) -> Path:
    labels = actual.reshape(-1).tolist()
    guesses = preds.argmax(dim=1).tolist()
    matrix = [[0] * n for _ in range(n)]
    for a, g in zip(labels, guesses, strict=True):
        if 0 <= a < n:
            matrix[a][g] += 1
    accuracy = sum(a == g for a, g in zip(labels, guesses, strict=True)) / len(labels)
    size = min(12.0, 3 + 0.5 * n)
    fig = _figure(size, size * 0.85)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    if n <= 20:
        top = max(max(row) for row in matrix) or 1
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i][j] > top / 2 else "black")
    if n <= 30:
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{model_name}: confusion matrix (accuracy {accuracy:.1%}, {len(labels)} "
                 "examples)")
    return _save(fig, target)


def render_importance(features: Sequence[str], means: Sequence[float], stds: Sequence[float],
                      model_name: str) -> Any:
    """A horizontal bar chart of permutation feature importance (the loss increase when a
    feature is shuffled, with its spread), most important on top; a matplotlib Figure."""
    shown = min(len(features), 30)
    fig = _figure(7.0, 1.2 + 0.3 * shown)
    ax = fig.subplots()
    rows = list(range(shown))[::-1]
    ax.barh(rows, list(means[:shown]), xerr=list(stds[:shown]), color="#1f77b4",
            ecolor="#555")
    ax.set_yticks(rows)
    ax.set_yticklabels(list(features[:shown]))
    ax.axvline(0.0, color="#999", linewidth=0.8)
    ax.set_xlabel("loss increase when the feature is shuffled (validation set)")
    ax.set_title(f"{model_name}: permutation feature importance")
    fig.tight_layout()
    return fig
