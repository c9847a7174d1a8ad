"""Small facts about a listed run for ``loopwise runs`` and ``loopwise show``: its step count,
its best metrics, and the text of its statistics and events."""

from __future__ import annotations

import json

from loopwise.record.reader import RunInfo, RunReader
from loopwise.record.stats import _num, infer_mode, render_stats
from loopwise.utils.text import printable


def run_steps(info: RunInfo) -> str:
    """The run's global step (from run.json, else the largest step recorded), as text."""
    try:
        reader = RunReader(info.path)
        step = reader.info.get("global_step")
        return str(max(step if isinstance(step, int) else 0, reader.last_step()))
    except (OSError, ValueError, KeyError):  # CorruptRecordError is a ValueError
        return "-"


def final_best(reader: RunReader, key: str) -> tuple[float | None, float | None]:
    """The last finite value of ``key`` and its best (min for losses, max for accuracies,
    :func:`loopwise.record.stats.infer_mode`), in NumPy: fast on series of millions of points."""
    import numpy as np

    values = np.frombuffer(reader.series(key).values)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    best = finite.min() if infer_mode(key) == "min" else finite.max()
    return float(finite[-1]), float(best)


def run_best(info: RunInfo, *, limit: int = 3) -> str:
    """``best key=value`` for the first ``limit`` metrics (min for losses, max for accuracies)."""
    keys = [k for k in info.last if k != "epoch"][:limit]
    try:
        reader = RunReader(info.path)
        bests = {k: final_best(reader, k)[1] for k in keys}
    except (OSError, ValueError, KeyError):  # CorruptRecordError is a ValueError
        return ""
    return ", ".join(f"{printable(k)}={_num(b)}" for k, b in bests.items() if b is not None)


def details(reader: RunReader, *, events: int = 20) -> str:
    """Per-metric statistics and the last ``events`` events of a run, as text."""
    keys = [k for k in reader.keys() if k != "epoch"]
    table = render_stats(reader.stats(keys=keys), title="statistics")
    lines = [printable(line) for line in table.splitlines()]
    shown = reader.events()[-events:]
    lines.append(f"events (last {len(shown)})" if shown else "events: none")
    for e in shown:
        data = f"  {printable(json.dumps(e.data))}" if e.data and "traceback" not in e.data else ""
        lines.append(f"  [{e.level}] {printable(e.kind)}: {printable(e.message)}{data}"[:300])
    return "\n".join(lines)
