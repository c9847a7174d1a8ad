"""An epoch's result (:class:`EpochResult`: the last values shown per phase) and its text, the
reference's ``Epoch N/E Summary:`` block: printed by
:class:`~loopwise.watch.session.TrainingSession` and by the Keras, Lightning and Hugging Face
callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class EpochResult:
    """One epoch's last shown values per phase (``val`` is None when it was not validated)."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float] | None = None
    train_steps: int = 0
    val_steps: int = 0


def format_values(values: Mapping[str, float]) -> str:
    """``Loss: 2.3089, Accuracy: 12.50%`` then other values by name
    (:func:`loopwise.watch.display.format_metrics`, ``style="label"``)."""
    from loopwise.watch.display import format_metrics

    return format_metrics(values, style="label") or "no steps reported"


def render_epoch_summary(result: EpochResult, epochs: int) -> str:
    """The reference's block: ``Epoch 1/10 Summary:`` and the Training/Validation lines."""
    lines = [f"Epoch {result.epoch}/{epochs} Summary:"]
    lines.append(f"  Training   - {format_values(result.train)}")
    if result.val is not None:
        lines.append(f"  Validation - {format_values(result.val)}")
    return "\n".join(lines)
