"""A bar's line: what it shows (:class:`BarState`, :class:`BarStyle`) and its text, a pure
function of that state (:func:`render_line`, built on ``tqdm.format_meter``), drawn by
:class:`loopwise.watch.progress.ProgressBar`. Values, rates and names follow the one display
rule of :mod:`loopwise.watch.display`."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

from tqdm import tqdm

from loopwise.utils.text import printable
from loopwise.watch.display import RATE_UNIT, format_metrics, format_rate

Metrics = Mapping[str, SupportsFloat]


@dataclass(frozen=True)
class BarStyle:
    """How a line looks: bar width in characters, which statistics are shown, the charset."""

    width: int = 70
    show_rate: bool = True
    show_eta: bool = True
    ascii: bool = False


@dataclass(frozen=True)
class BarState:
    """Everything a line shows: ``n`` steps done of ``total`` (None: unknown length) after
    ``elapsed`` seconds, the last metrics given, and the style."""

    desc: str
    n: int
    total: int | None
    elapsed: float
    metrics: Metrics | None = None
    style: BarStyle = BarStyle()
    note: str = ""  # text after the metrics (TrainingMonitor's ``wait=12%``)


def metric_numbers(metrics: Metrics | None) -> dict[str, float]:
    """The metrics as numbers (ints kept, tensors read now), in the mapping's order."""
    if not metrics:
        return {}
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[name] = value  # type: ignore[assignment]
            continue
        from loopwise.watch.convert import to_float  # torch: only for a value not a number

        try:
            out[name] = to_float(name, value)  # a line is drawn: the value is read now
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"metric {printable(name)!r} must be a number or a one-element tensor, "
                f"got {type(value).__name__}"
            ) from exc
    return out


def format_postfix(metrics: Metrics | None) -> str:
    """``loss=2.3089, accuracy=12.50%`` in the mapping's order; empty for no metrics."""
    return format_metrics(metric_numbers(metrics))


def render_line(state: BarState, *, ncols: int | None = None) -> str:
    """The bar as one line of text. With ``ncols`` (a terminal's width) a line that would not
    fit gets a shorter bar, so the numbers stay visible. With ``total=None``: the count, the
    elapsed time and the rate (no bar, percentage or ETA)."""
    style = state.style
    desc = printable(state.desc)
    postfix = ", ".join(part for part in (format_postfix(state.metrics), state.note) if part)
    rate = format_rate(state.n, state.elapsed)
    if state.total is None:
        stats = [tqdm.format_interval(state.elapsed)]
        if style.show_rate:
            stats.append(rate)
        if postfix:
            stats.append(postfix)
        head = f"{desc}: " if desc else ""
        return f"{head}{state.n}{RATE_UNIT} [{', '.join(stats)}]"
    stats_fmt = "{elapsed}<{remaining}" if style.show_eta else "{elapsed}"
    if style.show_rate:
        stats_fmt += ", {rate_str}"
    tail = "| {n_fmt}/{total_fmt} [" + stats_fmt + "{postfix}]"
    kwargs: dict[str, Any] = {
        "prefix": desc,
        "ascii": style.ascii,
        "unit": RATE_UNIT,
        "postfix": postfix or None,
        "rate_str": rate,
    }
    n, total, elapsed = state.n, state.total, state.elapsed
    line: str = tqdm.format_meter(
        n, total, elapsed, bar_format=f"{{l_bar}}{{bar:{style.width}}}" + tail, **kwargs
    )
    if ncols is not None and len(line) > ncols:
        line = tqdm.format_meter(
            n, total, elapsed, ncols=ncols, bar_format="{l_bar}{bar}" + tail, **kwargs
        )
    return line
