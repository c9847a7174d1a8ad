"""The text of a run's statistics and events for ``loopwise show`` (the run table of
``loopwise runs``, with final and best values, is :mod:`loopwise.view.runs_table`)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from loopwise.record.reader import RunReader
from loopwise.record.stats import MetricStats, render_stats
from loopwise.utils.text import printable


def metric_keys(reader: RunReader) -> list[str]:
    """The keys the statistics cover: every series but the ``epoch`` axis."""
    return [k for k in reader.keys() if k != "epoch"]


def details(reader: RunReader, *, events: int = 20,
            stats: Mapping[str, MetricStats] | None = None) -> str:
    """Per-metric statistics (``stats`` when the caller has them: :func:`metric_keys`'
    ``reader.stats``) and the last ``events`` events of a run, as text."""
    if stats is None:
        stats = reader.stats(keys=metric_keys(reader))
    table = render_stats(stats, title="statistics")
    lines = [printable(line) for line in table.splitlines()]
    shown = reader.events()[-events:]
    lines.append(f"events (last {len(shown)})" if shown else "events: none")
    for e in shown:
        data = f"  {printable(json.dumps(e.data))}" if e.data and "traceback" not in e.data else ""
        lines.append(f"  [{e.level}] {printable(e.kind)}: {printable(e.message)}{data}"[:300])
    return "\n".join(lines)
