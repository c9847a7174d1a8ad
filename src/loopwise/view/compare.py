"""``loopwise compare RUN RUN ...``: which run won each metric, and the config that differs.

Three text tables over any number of runs (rows of :mod:`loopwise.view.runs_table`):

* metrics, validation first: each run's final / best value, the winner of each metric marked
  ``*`` (by its best value, in the metric's direction; a metric whose name states no
  direction, ``lr``, has no winner);
* config keys whose values differ between the runs;
* config keys the runs have in common (one value each).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from loopwise.record.stats import _num, metric_mode
from loopwise.utils.table import render_table
from loopwise.utils.text import printable
from loopwise.view.runs_table import RunRow, metric_order
from loopwise.view.runs_text import cell_text
from loopwise.view.where import MISSING

WINNER = "*"


def _same(values: Sequence[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) == 1


def winners(rows: Sequence[RunRow], metric: str) -> set[int]:
    """Indices of the runs with the best value of ``metric`` (empty for a metric without a
    direction, or when fewer than two runs have it)."""
    mode = metric_mode(metric)
    if mode is None:
        return set()
    values = [(i, r.best.get(metric)) for i, r in enumerate(rows)]
    numbers = [(i, v) for i, v in values if isinstance(v, float) and math.isfinite(v)]
    if len(numbers) < 2:
        return set()
    top = (min if mode == "min" else max)(v for _, v in numbers)
    return {i for i, v in numbers if v == top}


def render_compare(rows: Sequence[RunRow], *, width: int | None = None) -> str:
    """The comparison of ``rows`` (two or more runs) as text, fitted to ``width`` columns."""
    if len(rows) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(rows)}")
    names = [r.name for r in rows]
    out = [f"runs: {printable(', '.join(names))}", "",
           f"metrics: final / best  ({WINNER} best run)"]
    metrics = metric_order(k for r in rows for k in r.final)
    table = []
    for m in metrics:
        won = winners(rows, m)
        cells = [m]
        for i, r in enumerate(rows):
            if m not in r.final:
                cells.append("-")
                continue
            best = f" / {_num(r.best.get(m))}" if m in r.best else ""
            cells.append(f"{_num(r.final[m])}{best}{' ' + WINNER if i in won else ''}")
        table.append(cells)
    out.append(render_table(table, header=["metric", *names], width=width) if table
               else "(no metrics recorded)")
    keys = list(dict.fromkeys(k for r in rows for k in r.config))
    differ = [k for k in keys if not _same([r.config.get(k, "\0missing") for r in rows])]
    common = [k for k in keys if k not in differ]
    out += ["", "config: differences"]
    out.append(render_table([[k, *(cell_text(k, r.config.get(k, MISSING)) for r in rows)]
                             for k in differ], header=["key", *names], width=width)
               if differ else "(the configs are the same)")
    out += ["", "config: in common"]
    out.append(render_table([[k, cell_text(k, rows[0].config[k])] for k in common],
                            header=["key", "value"], width=width) if common else "(none)")
    out += ["", "status: " + printable(", ".join(f"{r.name}={r.status}" for r in rows))]
    return "\n".join(out)
