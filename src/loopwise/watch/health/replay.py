"""Replay a finished (or running) run's record through the health detectors: ``analyze_run``.

```python
from loopwise.watch.health import analyze_run, render_findings

print(render_findings(analyze_run("runs/my-run")))
```

The record (``docs/record.md``) is turned back into the three streams the live runner is fed:

- **epoch**: the epoch summaries ``epoch/<name>``, grouped by the global step where their epoch
  ended and labelled with that epoch's number (from the ``epoch`` series). Names are those of the
  live epoch stream, the summary's name without its prefix: ``epoch/loss`` and
  ``epoch/val_loss`` are the ``loss``/``val_loss`` pair the overfitting detector watches, as the
  entry points feed it live. Series named by hand
  that match ``epoch_keys`` (``val_*``, ``train_*``, ...; grouped by their step) join it too;
- **step**: every other series (the ``epoch`` series itself is the axis, not a metric);
- **system**: the system samples, grouped by their time.

Everything is fed in time order, as it happened, to the detectors; nothing is written to the
run. A finished run is replayed a column at a time (:mod:`loopwise.watch.health.batch`): the
same findings, in the same order, as feeding a ``HealthMonitor(run=None)`` one observation at a
time (``batch=False``, kept as the reference the batched replay is tested against).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol

from loopwise.watch.health.base import Detector, Finding
from loopwise.watch.health.batch import EpochSource, epoch_table, replay, step_column, system_feeds
from loopwise.watch.health.runner import HealthMonitor

DEFAULT_EPOCH_KEYS = ("val_*", "train_*", "test_*", "epoch_*")
EPOCH_PREFIX = "epoch/"
EPOCH_SERIES = "epoch"

Feed = Callable[[HealthMonitor], object]


class _ReaderLike(Protocol):
    def keys(self) -> list[str]: ...

    def series(self, key: str) -> Any: ...

    def system(self) -> list[tuple[float, str, float]]: ...


def epoch_stream_name(summary: str) -> str:
    """The live epoch stream's name for the epoch summary ``epoch/<summary>``: the same name
    (TrainingMonitor, TrainingSession, fit and Workflow feed the runner the record's names)."""
    return summary


def analyze_run(source: _ReaderLike | str | os.PathLike[str], *,
                detectors: Sequence[Detector] | None = None,
                epoch_keys: Iterable[str] = DEFAULT_EPOCH_KEYS,
                batch: bool = True) -> list[Finding]:
    """Replay a run's record through the detectors; return the findings (see the module doc).

    ``source`` is a :class:`~loopwise.record.RunReader` or a run folder. ``batch=False`` feeds
    one observation at a time, as the live runner is fed (the same findings, slower).
    """
    if not isinstance(batch, bool):
        raise TypeError(f"batch must be True or False, got {type(batch).__name__}")
    if isinstance(source, (str, os.PathLike)):
        from loopwise.record.reader import RunReader

        reader: _ReaderLike = RunReader(Path(source))
    elif all(callable(getattr(source, m, None)) for m in ("keys", "series", "system")):
        reader = source
    else:
        raise TypeError(f"source must be a run folder or a RunReader, got "
                        f"{type(source).__name__}")
    patterns = (epoch_keys,) if isinstance(epoch_keys, str) else tuple(epoch_keys)
    monitor = HealthMonitor(None, detectors=detectors, console=None)  # checks the detectors
    keys = reader.keys()
    ended: dict[int, int] = {}  # global step -> the epoch that ended there
    if EPOCH_SERIES in keys:
        ends = reader.series(EPOCH_SERIES)
        ended = {int(s): int(v) for s, v in zip(ends.steps, ends.values, strict=True)}
    if not batch:
        return _replay_points(reader, keys, ended, patterns, monitor)
    columns, sources, seq = [], [], 0
    for key in keys:
        if key == EPOCH_SERIES:
            continue
        series = reader.series(key)
        summary = key.startswith(EPOCH_PREFIX)
        if summary or any(fnmatchcase(key, p) for p in patterns):
            name = epoch_stream_name(key[len(EPOCH_PREFIX):]) if summary else key
            sources.append(EpochSource(name, summary, series.steps, series.times,
                                       series.values))
        else:
            columns.append(step_column(key, series.steps, series.times, series.values, seq))
            seq += len(series.values)
    table = epoch_table(sources, ended, seq)
    system = system_feeds(reader.system(), seq + len(table.labels))
    return replay(monitor.detectors, columns, table, system)


def _replay_points(reader: _ReaderLike, keys: list[str], ended: dict[int, int],
                   patterns: tuple[str, ...], monitor: HealthMonitor) -> list[Finding]:
    """Every observation fed to ``monitor`` one at a time, in time order."""
    timeline: list[tuple[float, int, Feed]] = []
    epochs: dict[int, tuple[float, dict[str, float]]] = {}
    epoch_steps: dict[int, int] = {}  # epoch -> the global step where it ended
    for key in keys:
        if key == EPOCH_SERIES:
            continue
        series = reader.series(key)
        summary = key.startswith(EPOCH_PREFIX)
        by_hand = not summary and any(fnmatchcase(key, p) for p in patterns)
        name = epoch_stream_name(key[len(EPOCH_PREFIX):]) if summary else key
        for step, t, value in zip(series.steps, series.times, series.values, strict=True):
            if summary or by_hand:
                label = ended.get(int(step), int(step)) if summary else int(step)
                if summary and int(step) in ended:
                    epoch_steps[label] = int(step)
                when, values = epochs.setdefault(label, (float(t), {}))
                values[name] = float(value)
                epochs[label] = (max(when, float(t)), values)
            else:
                timeline.append((float(t), len(timeline), _step_feed(key, int(step),
                                                                     float(value), float(t))))
    for label, (t, values) in sorted(epochs.items()):
        timeline.append((t, len(timeline), _epoch_feed(label, values, t,
                                                       epoch_steps.get(label))))
    samples: dict[float, dict[str, float]] = {}
    for t, name, value in reader.system():
        samples.setdefault(t, {})[name] = value
    for t, values in samples.items():
        timeline.append((t, len(timeline), _system_feed(t, values)))
    timeline.sort(key=lambda item: (item[0], item[1]))
    for _, _, feed in timeline:
        feed(monitor)
    return monitor.findings


def _step_feed(key: str, step: int, value: float, t: float) -> Feed:
    return lambda m: m.observe(key, step, value, time=t)


def _epoch_feed(epoch: int, values: dict[str, float], t: float, step: int | None) -> Feed:
    return lambda m: m.observe_epoch(epoch, values, time=t, step=step)


def _system_feed(t: float, values: dict[str, float]) -> Feed:
    return lambda m: m.observe_system(t, values)
