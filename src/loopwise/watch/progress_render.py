"""Rendering of a progress line: pure functions of the bar's state, built on
``tqdm.format_meter`` (used by :class:`loopwise.watch.progress.ProgressBar`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

from tqdm import tqdm

Metrics = Mapping[str, SupportsFloat]


@dataclass(frozen=True)
class BarStyle:
    """How a line looks: bar width in characters, which statistics are shown, the charset."""

    width: int = 70
    show_rate: bool = True
    show_eta: bool = True
    ascii: bool = False
    unit: str = "batch"


def format_metric(name: str, value: SupportsFloat) -> str:
    """``loss=2.309`` or, for a name containing "acc", ``accuracy=12.50%`` (value is a fraction)."""
    try:
        v = float(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"metric {name!r} must be a number or a one-element tensor, got {type(value).__name__}"
        ) from exc
    if "acc" in name.lower():
        return f"{name}={v * 100:.2f}%"
    return f"{name}={v:.4g}"


def format_metrics(metrics: Metrics | None) -> str:
    """``loss=2.31, accuracy=12.50%`` in the mapping's order; empty for no metrics."""
    if not metrics:
        return ""
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
        )
    return ", ".join(format_metric(str(k), v) for k, v in metrics.items())


def format_rate(n: int, elapsed: float, unit: str) -> str:
    """Average rate since the start: ``6.45batch/s``, or ``4.00s/batch`` when slower than 1/s."""
    rate = n / elapsed if elapsed > 0 else 0.0
    if rate <= 0:
        return f"?{unit}/s"
    return f"{rate:.2f}{unit}/s" if rate >= 1 else f"{1 / rate:.2f}s/{unit}"


def render_line(
    desc: str,
    n: int,
    total: int,
    elapsed: float,
    metrics: Metrics | None,
    style: BarStyle,
    *,
    ncols: int | None = None,
) -> str:
    """The bar as one line of text. With ``ncols`` (a terminal's width) a line that would not
    fit gets a shorter bar, so the numbers stay visible."""
    stats = "{elapsed}<{remaining}" if style.show_eta else "{elapsed}"
    if style.show_rate:
        stats += ", {rate_str}"
    tail = "| {n_fmt}/{total_fmt} [" + stats + "{postfix}]"
    kwargs: dict[str, Any] = {
        "prefix": desc,
        "ascii": style.ascii,
        "unit": style.unit,
        "postfix": format_metrics(metrics) or None,
        "rate_str": format_rate(n, elapsed, style.unit),
    }
    line: str = tqdm.format_meter(
        n, total, elapsed, bar_format=f"{{l_bar}}{{bar:{style.width}}}" + tail, **kwargs
    )
    if ncols is not None and len(line) > ncols:
        line = tqdm.format_meter(
            n, total, elapsed, ncols=ncols, bar_format="{l_bar}{bar}" + tail, **kwargs
        )
    return line
