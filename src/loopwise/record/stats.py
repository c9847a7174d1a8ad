"""Per-metric statistics of a run: min, max, mean, last, best (and its step), and the slope of the
last window; plus a pure text renderer of the table shown at the end of training.

Everything here works on plain sequences, so it needs no torch and no open run::

    from loopwise.record import RunReader
    from loopwise.record.stats import run_stats, render_stats

    print(render_stats(run_stats(RunReader("runs/my-run"))))

Non-finite values (NaN, inf) are counted in ``nonfinite`` and left out of every other figure.
"Best" is the minimum or the maximum depending on ``mode``; ``mode="auto"`` reads the key
(:func:`infer_mode`). The slope is the least-squares slope of value against step over the last
``window`` finite points, in units per step (negative: falling).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopwise.utils.table import render_table
from loopwise.utils.text import printable
from loopwise.utils.validate import check_int, check_key

DEFAULT_WINDOW = 20

# Names whose larger values are better (a word, optionally followed by digits: top5, map50, f1);
# everything else (losses, errors, perplexity, the learning rate) is minimised. The list is
# documented in loopwise.watch.improvement (mode="auto") and docs/callbacks.md.
_MAX_PATTERN = re.compile(
    r"(acc|accuracy|auc|auroc|ap|map|fbeta|fscore|precision|recall|sensitivity|specificity|"
    r"topk|iou|miou|jaccard|dice|kappa|mcc|r2|bleu|rouge|psnr|ssim|ndcg|mrr|hit|hits|score|"
    r"reward)\d*|(f|top)\d+", re.IGNORECASE)
_MIN_PATTERN = re.compile(r"(loss|error|err|mse|mae|rmse|nll|perplexity|ppl|wer|cer|time)\d*",
                          re.IGNORECASE)


def metric_mode(key: str) -> str | None:
    """The direction the name ``key`` itself states: ``"min"`` for a loss-like word (loss,
    error, mse, perplexity, time, ...), ``"max"`` for a score word (acc, f1, auc, score, ...),
    None when it names neither (``lr``, ``momentum``, ``grad_norm``, ``epoch``): such a key is
    a quantity to watch, not to optimise, and has no "best" value in a run table.

    A name that looks like both (``"acc_loss"``) is minimised: loss wins.
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a string, got {type(key).__name__}")
    tokens = re.split(r"[^A-Za-z0-9]+", key)
    if any(_MIN_PATTERN.fullmatch(t) for t in tokens if t):
        return "min"
    if any(_MAX_PATTERN.fullmatch(t) for t in tokens if t):
        return "max"
    return None


def infer_mode(key: str) -> str:
    """``"max"`` for accuracy-like names (acc, f1, auc, score, ...), ``"min"`` otherwise
    (:func:`metric_mode`, with ``"min"`` for a name that states no direction).

    A name that looks like both (``"acc_loss"``) is minimised: loss wins.
    """
    return metric_mode(key) or "min"


@dataclass(frozen=True)
class MetricStats:
    """The statistics of one series. Figures are None when the series has no finite value."""

    key: str
    count: int
    nonfinite: int
    mode: str
    min: float | None
    max: float | None
    mean: float | None
    last: float | None
    last_step: int | None
    best: float | None
    best_step: int | None
    slope: float | None
    window: int

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def mean(values: Sequence[float]) -> float:
    """The mean of finite ``values`` (``math.fsum``, correctly rounded), also when their sum
    exceeds the float range (values near 1e308: then each is divided first)."""
    n = len(values)
    try:
        return math.fsum(values) / n
    except OverflowError:
        return math.fsum(v / n for v in values)


def slope(steps: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of ``values`` against ``steps``; None for < 2 points, one step, or
    values so large that the fit leaves the float range."""
    n = len(values)
    if n != len(steps):
        raise ValueError(f"steps and values differ in length ({len(steps)} vs {n})")
    if n < 2:
        return None
    mx = mean(steps)
    my = mean(values)
    sxx = math.fsum((x - mx) ** 2 for x in steps)
    if sxx == 0:
        return None
    try:
        fit = math.fsum((x - mx) * (y - my) for x, y in zip(steps, values, strict=True)) / sxx
    except (OverflowError, ValueError):  # inf - inf among the products, or their sum too big
        return None
    return fit if math.isfinite(fit) else None


def metric_stats(key: str, steps: Sequence[int], values: Sequence[float], *,
                 mode: str = "auto", window: int = DEFAULT_WINDOW) -> MetricStats:
    """Statistics of one series given as parallel ``steps`` and ``values``."""
    check_key(key, what="key")
    if mode not in ("min", "max", "auto"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    check_int(window, what="window", minimum=2, hint="points in the slope fit")
    if len(steps) != len(values):
        raise ValueError(f"{key}: steps and values differ in length ({len(steps)} vs "
                         f"{len(values)})")
    resolved = infer_mode(key) if mode == "auto" else mode
    if len(values) >= _VECTOR_FROM:
        found = _vector_stats(key, steps, values, resolved, window)
        if found is not None:
            return found
    pairs = [(int(s), float(v)) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    nonfinite = len(values) - len(pairs)
    if not pairs:
        return MetricStats(key, len(values), nonfinite, resolved, None, None, None, None, None,
                           None, None, None, window)
    finite = [v for _, v in pairs]
    pick = min if resolved == "min" else max
    best_step, best = pick(pairs, key=lambda p: p[1])  # first occurrence of the best value
    tail = pairs[-window:]
    return MetricStats(
        key=key, count=len(values), nonfinite=nonfinite, mode=resolved,
        min=min(finite), max=max(finite), mean=mean(finite),
        last=pairs[-1][1], last_step=pairs[-1][0], best=best, best_step=best_step,
        slope=slope([float(s) for s, _ in tail], [v for _, v in tail]), window=window,
    )


_VECTOR_FROM = 10_000  # points from which the figures are taken with numpy (same results)


def _vector_stats(key: str, steps: Sequence[int], values: Sequence[float], resolved: str,
                  window: int) -> MetricStats | None:
    """``metric_stats``'s figures with numpy over the whole series (a 2,000,000-point series
    in tens of milliseconds instead of seconds): the same figures, the mean still by
    ``math.fsum``; None when the sequences do not convert (the caller's loop says why)."""
    import numpy as np

    try:
        v = np.asarray(values, dtype=np.float64)
        s = np.asarray(steps, dtype=np.float64).astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        return None
    if v.ndim != 1 or s.shape != v.shape:
        return None
    ok = np.isfinite(v)
    fv, fs = v[ok], s[ok]
    nonfinite = len(v) - len(fv)
    if not len(fv):
        return MetricStats(key, len(v), nonfinite, resolved, None, None, None, None, None,
                           None, None, None, window)
    at = int(np.argmin(fv) if resolved == "min" else np.argmax(fv))  # the first best
    tail_s, tail_v = fs[-window:], fv[-window:]
    return MetricStats(
        key=key, count=len(v), nonfinite=nonfinite, mode=resolved,
        min=float(fv.min()), max=float(fv.max()), mean=mean(fv.tolist()),
        last=float(fv[-1]), last_step=int(fs[-1]), best=float(fv[at]), best_step=int(fs[at]),
        slope=slope([float(x) for x in tail_s.tolist()], tail_v.tolist()), window=window,
    )


class _SeriesLike(Protocol):
    @property
    def steps(self) -> Sequence[int]: ...

    @property
    def values(self) -> Sequence[float]: ...


class _ReaderLike(Protocol):
    def keys(self) -> list[str]: ...

    def series(self, key: str) -> Any: ...


def run_stats(reader: _ReaderLike, *, keys: Iterable[str] | None = None,
              modes: Mapping[str, str] | None = None,
              window: int = DEFAULT_WINDOW) -> dict[str, MetricStats]:
    """Statistics of every series of a run (a :class:`~loopwise.record.RunReader`), by key.

    ``keys`` limits the series; ``modes`` overrides the inferred mode of some keys.
    """
    if not (hasattr(reader, "keys") and hasattr(reader, "series")):
        raise TypeError(f"reader must be a RunReader, got {type(reader).__name__}")
    chosen = list(reader.keys()) if keys is None else list(keys)
    modes = dict(modes or {})
    out: dict[str, MetricStats] = {}
    for key in chosen:
        series: _SeriesLike = reader.series(key)
        out[key] = metric_stats(key, series.steps, series.values,
                                mode=modes.get(key, "auto"), window=window)
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def render_stats(stats: Mapping[str, MetricStats] | Iterable[MetricStats], *,
                 title: str | None = "Metric statistics") -> str:
    """The statistics as a fixed-width text table (one row per metric), ready to print
    (:func:`loopwise.utils.table.render_table`; names pass through ``printable``).

    Columns: metric, n, min, max, mean, last, best @step, slope/step of the last window.
    A metric with non-finite values gets a ``(+k non-finite)`` note after its row.
    """
    rows = list(stats.values()) if isinstance(stats, Mapping) else list(stats)
    header = ["metric", "n", "min", "max", "mean", "last", "best", "@step", "slope/step"]
    table = [header]
    notes: list[str] = []
    for s in rows:
        if not isinstance(s, MetricStats):
            raise TypeError(f"render_stats takes MetricStats, got {type(s).__name__}")
        table.append([s.key, str(s.count), _num(s.min), _num(s.max), _num(s.mean), _num(s.last),
                      f"{_num(s.best)} ({s.mode})" if s.best is not None else "-",
                      "-" if s.best_step is None else str(s.best_step), _num(s.slope)])
        if s.nonfinite:
            notes.append(printable(f"{s.key}: {s.nonfinite} non-finite value(s) left out"))
    lines = [] if title is None else [printable(title)]
    lines.append(render_table(table[1:], header=header, align="l" + "r" * (len(header) - 1)))
    if len(table) == 1:
        lines.append("(no metrics recorded)")
    lines.extend(notes)
    return "\n".join(lines)
