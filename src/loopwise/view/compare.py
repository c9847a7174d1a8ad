"""``loopwise compare RUN RUN...``: the config keys that differ and each metric's final and best
value, side by side, as text tables."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from loopwise.record.reader import RunReader
from loopwise.record.stats import _num
from loopwise.utils.text import printable
from loopwise.view.run_facts import final_best

_MISSING = object()


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as ``{"a.b": value}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> str:
    if value is _MISSING:
        return "-"
    if isinstance(value, str):
        return printable(value)
    return printable(json.dumps(value, allow_nan=True))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return lines


def render_compare(readers: Sequence[RunReader]) -> str:
    """Config differences and final/best metrics of ``readers`` (two or more runs)."""
    if len(readers) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(readers)}")
    names = [printable(r.info.get("name", r.path.name)) for r in readers]
    lines = [f"runs: {', '.join(names)}", "", "config differences"]
    configs = [flatten(r.config()) for r in readers]
    keys = sorted(set().union(*configs))
    rows = [[printable(k), *(_cell(c.get(k, _MISSING)) for c in configs)] for k in keys
            if len({json.dumps(c.get(k, "\0missing"), sort_keys=True) for c in configs}) > 1]
    lines += _table(["key", *names], rows) if rows else ["(the configs are the same)"]
    known_keys = [set(r.keys()) for r in readers]
    metrics = [k for k in dict.fromkeys(k for r in readers for k in r.keys()) if k != "epoch"]
    lines += ["", "metrics: final / best"]
    rows = []
    for key in metrics:
        row = [printable(key)]
        for reader, known in zip(readers, known_keys, strict=True):
            if key not in known:
                row.append("-")
                continue
            last, best = final_best(reader, key)
            row.append(f"{_num(last)} / {_num(best)}")
        rows.append(row)
    lines += _table(["metric", *names], rows) if rows else ["(no metrics recorded)"]
    lines += ["", "status: " + ", ".join(f"{n}={printable(r.status)}"
                                         for n, r in zip(names, readers, strict=True))]
    return "\n".join(lines)
