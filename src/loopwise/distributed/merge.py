"""Merging the ranks' refresh windows into one (pure functions; no torch.distributed here).

Each rank sends a payload (``dict``): ``step0`` (its global step before the window), ``cols``
(key -> ``(steps, wall_times, values)``), ``w`` (key -> per-step weights, e.g. batch sizes),
``sys`` (its buffered system samples) and ``every`` (its proposal for the next sync interval).
:func:`merge_windows` gives every rank the same result: per global step and key, the mean over
the ranks that logged it (weighted by the weights where a rank gave them, and the weights
summed: a count adds up), at rank 0's wall time. Steps are numbered as on rank 0.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any

Payload = Mapping[str, Any]
Column = tuple[Sequence[int], Sequence[float], Sequence[float]]


def merge_windows(payloads: Sequence[Payload]
                  ) -> tuple[dict[str, Column], dict[str, list[float]], bool]:
    """``(columns, weights, uniform)`` of the merged window (see the module doc).

    Values are summed in rank order and divided once, so two ranks give ``(v0 + v1) / 2``,
    exactly what a single process computes from the same numbers."""
    if not payloads:
        raise ValueError("merge_windows needs one payload per rank, got none")
    base = int(payloads[0]["step0"])
    # key -> step -> [weighted sum, weight sum, wall time, weighted?]
    acc: dict[str, dict[int, list[Any]]] = {}
    for payload in payloads:
        offset = base - int(payload["step0"])
        weights = payload.get("w") or {}
        for key, (steps, walls, values) in payload["cols"].items():
            per_step = acc.setdefault(key, {})
            w = weights.get(key)
            for i, step in enumerate(steps):
                s = int(step) + offset
                weight = 1.0 if w is None else float(w[i])
                entry = per_step.get(s)
                if entry is None:
                    per_step[s] = [values[i] * weight, weight, walls[i], w is not None]
                else:
                    entry[0] += values[i] * weight
                    entry[1] += weight
    columns: dict[str, Column] = {}
    out_weights: dict[str, list[float]] = {}
    for key, per_step in acc.items():
        steps_out = sorted(per_step)
        walls_out = [float(per_step[s][2]) for s in steps_out]
        values_out = [_mean(per_step[s]) for s in steps_out]
        columns[key] = (steps_out, walls_out, values_out)
        if any(per_step[s][3] for s in steps_out):
            out_weights[key] = [float(per_step[s][1]) for s in steps_out]
    return _shared(columns), out_weights, _is_uniform(columns)


def _mean(entry: list[Any]) -> float:
    total, weight = float(entry[0]), float(entry[1])
    return total / weight if weight else float("nan")


def _is_uniform(columns: Mapping[str, Column]) -> bool:
    """Every key has the same consecutive steps (one CSV row per step)."""
    if not columns:
        return True
    first = next(iter(columns.values()))[0]
    if not first or list(first) != list(range(first[0], first[0] + len(first))):
        return False
    return all(list(c[0]) == list(first) for c in columns.values())


def _shared(columns: dict[str, Column]) -> dict[str, Column]:
    """Columns as arrays (``q`` steps, ``d`` times and values), as the accumulator's own."""
    return {key: (array("q", steps), array("d", walls), array("d", values))
            for key, (steps, walls, values) in columns.items()}


def rank_samples(payloads: Sequence[Payload]) -> list[tuple[float, dict[str, float]]]:
    """Every rank's buffered system samples as ``(wall_time, {"rank{r}/<name>": value})``."""
    out: list[tuple[float, dict[str, float]]] = []
    for rank, payload in enumerate(payloads):
        for wall, values in payload.get("sys") or ():
            out.append((float(wall), {f"rank{rank}/{k}": float(v) for k, v in values.items()}))
    out.sort(key=lambda item: item[0])
    return out


def next_interval(steps: int, elapsed_s: float, target_s: float, *, low: int = 1,
                  high: int = 10_000) -> int:
    """Steps between syncs so that one comes about every ``target_s`` seconds."""
    if steps <= 0 or elapsed_s <= 0:
        return low
    return max(low, min(high, round(steps * target_s / elapsed_s)))
