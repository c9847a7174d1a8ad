"""What a ``CheckpointManager`` keeps (the keep-k/best policy, apart from how files are written).

The keep set is the last ``keep_last`` saves plus the best ``keep_best`` by the monitored
metric. Ranking: lower is better in ``"min"`` mode, higher in ``"max"`` (``"auto"`` reads the
metric's name, see :mod:`loopwise.watch.improvement`); ties go to the earlier
save (the first to reach a value keeps it); NaN or a missing value is never ranked. The "is this
a new best?" rule for backups is the shared ``loopwise.watch.improvement.Improvement``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from loopwise.checkpoint.manifest import ManifestEntry
from loopwise.utils.validate import check_count, check_key, check_number
from loopwise.watch.improvement import check_mode, resolve_mode


def check_policy(monitor: object, mode: str, keep_last: object,
                 keep_best: object) -> tuple[int, int, str]:
    """Validate the policy arguments; return ``(keep_last, keep_best, mode)`` with ``"auto"``
    resolved to ``"min"`` or ``"max"`` from the monitored name (``"min"`` without monitor:
    nothing is ranked then)."""
    if monitor is not None and (not isinstance(monitor, str) or not monitor):
        raise ValueError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
    check_mode(mode)
    resolved = resolve_mode(mode, monitor) if isinstance(monitor, str) else \
        ("min" if mode == "auto" else mode)
    last = check_count(keep_last, what="keep_last")
    best = check_count(keep_best, what="keep_best")
    if last == 0 and (best == 0 or monitor is None):
        raise ValueError(
            "this CheckpointManager would keep nothing: set keep_last >= 1, or monitor= a "
            "metric with keep_best >= 1"
        )
    return last, best, resolved


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        check_key(key)  # the one key rule
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()  # a save is an explicit request; reading a value now is fine
        clean[key] = check_number(value, what=f"metric {key!r}")
    return clean


def monitored_value(entry: ManifestEntry, monitor: str | None) -> float | None:
    """The entry's value of ``monitor``; None without monitor, value, or for NaN."""
    if monitor is None:
        return None
    value = entry.metrics.get(monitor)
    return None if value is None or math.isnan(value) else value


def ranked(entries: list[ManifestEntry], monitor: str | None,
           mode: str) -> list[ManifestEntry]:
    """Best first; ties go to the earlier save (the first to reach a value keeps it)."""
    scored = [(v, e) for e in entries if (v := monitored_value(e, monitor)) is not None]
    sign = 1.0 if mode == "min" else -1.0
    scored.sort(key=lambda ve: (sign * ve[0], ve[1].seq))
    return [e for _, e in scored]


def keep_set(entries: list[ManifestEntry], *, keep_last: int, keep_best: int,
             monitor: str | None, mode: str) -> list[ManifestEntry]:
    """The entries to keep, oldest save first: the last ``keep_last`` and best ``keep_best``."""
    by_seq = sorted(entries, key=lambda e: e.seq)
    keep = {e.file for e in by_seq[-keep_last:]} if keep_last else set()
    keep |= {e.file for e in ranked(by_seq, monitor, mode)[:keep_best]}
    return [e for e in by_seq if e.file in keep]
