"""The JSON the report and the dashboard draw from: downsampled series with their three axes,
events, system samples, config and the per-epoch table, read from one run.

Every series keeps its extremes (:func:`loopwise.record.downsample`, a min/max envelope): a spike
survives. Non-finite values become ``null`` (a gap in the chart). The ``epoch`` axis is the
fractional epoch: ``e - 1 + (step - end of e-1) / (length of e)``, so an epoch summary logged at
the step where epoch ``e`` ended sits at ``x = e`` and per-step points spread between.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loopwise.record.intact import IntactReader, damage_events, intact
from loopwise.record.reader import RunReader
from loopwise.record.series import Series, downsample
from loopwise.utils.validate import check_int

AXES = ("step", "epoch", "time")
MAX_EVENTS = 5000


def finite_list(values: Sequence[float]) -> list[float | None]:
    """``values`` as JSON-ready floats, NaN and infinities as ``None``."""
    return [v if math.isfinite(v) else None for v in values]


def nonfinite_summary(series: Series) -> dict[str, Any]:
    """``{"nonfinite": count, "first_nonfinite": step or None}`` of a whole series: the
    charts cannot draw NaN or infinity, so the page says how many there were and where."""
    import numpy as np

    steps, _, values = series.to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    return {"nonfinite": len(bad),
            "first_nonfinite": int(steps[bad[0]]) if len(bad) else None}


def epoch_ends(reader: RunReader) -> list[int]:
    """The global steps where each epoch ended (from the ``epoch`` series), in step order."""
    if "epoch" not in reader.keys():
        return []
    series = reader.series("epoch")
    return sorted(int(s) for s in series.steps)


def epoch_axis(steps: Any, ends: Sequence[int], *, last: float | None = None) -> Any:
    """The fractional epoch of each step (a NumPy array; see the module doc): epoch ``e``
    spans ``(e - 1, e]``; past the last end, epochs continue at the last epoch's length; a run
    that never ended an epoch is in epoch 1, spread over ``(0, 1]`` by its ``last`` step
    (default: the largest of ``steps``)."""
    import numpy as np

    at = np.asarray(steps, dtype=np.float64)
    if not len(ends):
        if last is None:
            last = float(at.max()) if len(at) else 1.0
        return at / max(last, 1.0)
    bounds = np.concatenate([[0.0], np.asarray(ends, dtype=np.float64)])
    lengths = np.diff(bounds)
    lengths[lengths <= 0] = 1.0
    idx = np.clip(np.searchsorted(bounds, at, side="left") - 1, 0, len(lengths) - 1)
    return idx + (at - bounds[idx]) / lengths[idx]


def epoch_to_step(position: float, ends: Sequence[int]) -> float:
    """The inverse of :func:`epoch_axis` for one position: the (fractional) step at which the
    fractional epoch ``position`` is reached."""
    if not len(ends):
        raise ValueError("the run ended no epoch: its epoch axis is relative to its last step")
    bounds = [0, *ends]
    idx = min(max(math.ceil(position) - 1, 0), len(bounds) - 2)
    length = bounds[idx + 1] - bounds[idx] or 1
    return bounds[idx] + (position - idx) * length


def series_payload(series: Series, ends: Sequence[int], *, total: int | None = None,
                   last: float | None = None) -> dict[str, Any]:
    """One (already downsampled) series as JSON columns: step, time, epoch, value
    (``last``: the full series' last step, for the epoch axis of a run without epochs)."""
    steps = [int(s) for s in series.steps]
    epochs = [round(float(p), 6) for p in epoch_axis(steps, ends, last=last)]
    return {"key": series.key, "steps": steps, "times": [round(t, 3) for t in series.times],
            "epochs": epochs, "values": finite_list(series.values),
            "points": len(series), "total": len(series) if total is None else total}


def system_payload(reader: RunReader, *, max_points: int) -> dict[str, dict[str, list[Any]]]:
    """System samples by name: ``{name: {"times": [...], "values": [...]}}``, each downsampled."""
    from array import array

    by_name: dict[str, tuple[array[float], array[float]]] = {}
    for t, name, value in reader.system():
        times, values = by_name.setdefault(name, (array("d"), array("d")))
        times.append(t)
        values.append(value)
    out: dict[str, dict[str, list[Any]]] = {}
    for name, (times, values) in by_name.items():
        steps = array("q", range(len(values)))
        small = downsample(Series(name, steps, times, values), max_points)
        out[name] = {"times": [round(t, 3) for t in small.times],
                     "values": finite_list(small.values)}
    return out


def epoch_table(reader: RunReader) -> dict[str, Any]:
    """The per-epoch table: ``{"columns": [...], "rows": [[epoch, step, v...], ...]}`` from the
    ``epoch`` series and every ``epoch/<name>`` series, at the steps where epochs ended."""
    keys = [k for k in reader.keys() if k.startswith("epoch/")]
    if "epoch" not in reader.keys():
        return {"columns": ["epoch", "step", *(k[6:] for k in keys)], "rows": []}
    ends = reader.series("epoch")
    by_key = {}
    for key in keys:
        s = reader.series(key)
        by_key[key] = dict(zip(s.steps, s.values, strict=True))
    rows = []
    for step, epoch in sorted(zip(ends.steps, ends.values, strict=True)):
        row: list[Any] = [int(epoch), int(step)]
        for key in keys:
            v = by_key[key].get(step)
            row.append(v if v is not None and math.isfinite(v) else None)
        rows.append(row)
    return {"columns": ["epoch", "step", *(k[6:] for k in keys)], "rows": rows}


def best_epoch(reader: RunReader) -> dict[str, Any] | None:
    """The best epoch by the run's validation loss (else its first ``epoch/val_*`` series, else
    ``epoch/loss``), smaller or larger better as :func:`loopwise.record.stats.infer_mode` says
    from the name: ``{"key", "epoch", "step", "value"}``, or None without epoch summaries."""
    from loopwise.record.stats import infer_mode

    keys = reader.keys()
    vals = [k for k in keys if k.startswith("epoch/val_")]
    key = next((k for k in ("epoch/val_loss", *vals, "epoch/loss") if k in keys), None)
    if key is None or "epoch" not in keys:
        return None
    epochs = dict(zip(reader.series("epoch").steps, reader.series("epoch").values, strict=True))
    series = reader.series(key)
    sign = 1.0 if infer_mode(key) == "min" else -1.0
    best: tuple[float, int, float] | None = None
    for step, value in zip(series.steps, series.values, strict=True):
        if math.isfinite(value) and step in epochs and (best is None or sign * value < best[0]):
            best = (sign * value, int(step), value)
    if best is None:
        return None
    return {"key": key, "epoch": int(epochs[best[1]]), "step": best[1], "value": best[2]}


def run_payload(reader: RunReader, *, max_points: int = 4000,
                ending: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the report draws for one run; ``ending`` (``status``, ``end_time``): the end
    of a run that is closing, written over what ``run.json`` says yet."""
    max_points = check_int(max_points, what="max_points", minimum=2)
    reader = reader if isinstance(reader, IntactReader) else intact(reader)
    info = reader.info
    info.update(ending or {})
    step = info.get("global_step")
    info["global_step"] = max(step if isinstance(step, int) else 0, reader.last_step())
    ends = epoch_ends(reader)
    series = {}
    for key in reader.keys():
        full = reader.series(key)
        series[key] = series_payload(downsample(full, max_points), ends, total=len(full),
                                     last=max(full.steps) if len(full) else None)
        series[key].update(nonfinite_summary(full))
    events = [{"time": e.time, "level": e.level, "kind": e.kind, "message": e.message,
               "step": (e.data or {}).get("step") if isinstance(e.data, dict) else None}
              for e in reader.events()]
    if len(events) > MAX_EVENTS:  # keep every warning and error, then the latest others
        loud = [e for e in events if e["level"] in ("warning", "error")]
        quiet = [e for e in events if e["level"] not in ("warning", "error")]
        room = max(MAX_EVENTS - len(loud), 0)
        events = loud[-MAX_EVENTS:] + (quiet[len(quiet) - room:] if room else [])
    events.extend(_status_events(info))
    events.extend(damage_events(reader.damage))  # said in the page: the rest is still shown
    events.sort(key=lambda e: float(e["time"] or 0.0))
    return {
        "name": str(info.get("name", reader.path.name)), "status": str(info["status"]),
        "info": {k: info.get(k) for k in ("id", "started_at", "ended_at", "start_time",
                                          "end_time", "host", "global_step", "argv")},
        "config": reader.config(), "series": series, "epoch_ends": ends,
        "system": system_payload(reader, max_points=max_points), "events": events,
        "epoch_table": epoch_table(reader), "best": best_epoch(reader),
        "damaged": [str(d) for d in reader.damage],
    }


def _status_events(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's start and end as timeline entries (the end is in run.json, not the store)."""
    out: list[dict[str, Any]] = []
    start, end = info.get("start_time"), info.get("end_time")
    if isinstance(start, (int, float)):
        out.append({"time": start, "level": "info", "kind": "started",
                    "message": "run started", "step": None})
    if isinstance(end, (int, float)):
        status = str(info.get("status"))
        error = info.get("error")
        why = error.strip().splitlines()[-1] if isinstance(error, str) and error.strip() else ""
        out.append({"time": end, "level": "info" if status == "finished" else "error",
                    "kind": status, "message": f"run ended as {status}"
                    + (f": {why}" if why and status != "finished" else ""),
                    "step": info.get("global_step")})
    return out
