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

Everything is fed in time order, as it happened, to a ``HealthMonitor(run=None)``; nothing is
written to the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from loopwise.watch.health.base import Detector, Finding, KeyedDetector
from loopwise.watch.health.runner import HealthMonitor, _at_epoch

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

    ``source`` is a :class:`~loopwise.record.RunReader` or a run folder. ``batch``: feed each
    series to the detectors that take whole columns (:meth:`KeyedDetector.update_column`) a
    column at a time, the other detectors one observation at a time; the findings are those of
    feeding everything one point at a time, in time order (``batch=False``, the live runner's
    way, kept as the reference the batched replay is tested against).
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
    columns, feeds = _streams(reader, patterns)
    monitor = HealthMonitor(None, detectors=detectors, console=None)
    if not batch:
        return _replay_points(monitor, columns, feeds)
    ranked: list[tuple[tuple[float, int, int, int], Finding]] = []
    by_name = _observations(feeds)
    for index, detector in enumerate(monitor.detectors):
        if isinstance(detector, KeyedDetector) and type(detector).update is KeyedDetector.update:
            ranked += _by_key(detector, index, columns, by_name)
        else:
            ranked += _by_feed(detector, index, columns, feeds)
    ranked.sort(key=lambda item: item[0])  # stable: a feed's findings keep their order
    return [finding for _, finding in ranked]


class _Column(NamedTuple):
    """One series of the step stream, in time order (``order``: its points' positions in the
    series), and ``base``: its first point's place in the replay's order of arrival."""

    key: str
    steps: Any
    times: Any
    values: Any
    order: Any
    base: int


_Feed = tuple[float, int, str, int, dict[str, float], "int | None"]
# One observation of the epoch or system stream as the runner receives it: ``values`` are
# the epoch's metrics over the latest system sample's means (``observe_epoch``); ``label`` is
# the epoch (or the system sample's count), ``at_step`` the step where the epoch ended:
# ``(time, seq, stream, label, values, at_step)``, a plain tuple (2,000,000 of them are made
# for a series named by hand at every step).


def _streams(reader: _ReaderLike,
             patterns: tuple[str, ...]) -> tuple[list[_Column], list[_Feed]]:
    """The step stream as columns and the epoch and system streams as feeds, in time order
    (ties in the order the original replay appended them: step points by key, then epochs,
    then system samples)."""
    import numpy as np

    keys = reader.keys()
    ended: dict[int, int] = {}  # global step -> the epoch that ended there
    if EPOCH_SERIES in keys:
        ends = reader.series(EPOCH_SERIES)
        ended = {int(s): int(v) for s, v in zip(ends.steps, ends.values, strict=True)}
    columns: list[_Column] = []
    epochs: dict[int, tuple[float, dict[str, float]]] = {}
    epoch_steps: dict[int, int] = {}  # epoch -> the global step where it ended
    seq = 0
    for key in keys:
        if key == EPOCH_SERIES:
            continue
        series = reader.series(key)
        summary = key.startswith(EPOCH_PREFIX)
        by_hand = not summary and any(fnmatchcase(key, p) for p in patterns)
        if not (summary or by_hand):
            steps = np.asarray(series.steps, dtype=np.int64)
            times = np.asarray(series.times, dtype=np.float64)
            values = np.asarray(series.values, dtype=np.float64)
            order: Any = np.argsort(times, kind="stable")
            if len(order) and np.all(order[1:] > order[:-1]):
                order = None  # already in time order (the usual case): no copies
            else:
                steps, times, values = steps[order], times[order], values[order]
            columns.append(_Column(key, steps, times, values, order, seq))
            seq += len(values)
            continue
        name = epoch_stream_name(key[len(EPOCH_PREFIX):]) if summary else key
        at_steps = [int(step) for step in series.steps]
        labels = [ended.get(step, step) for step in at_steps] if summary else at_steps
        if summary:
            epoch_steps.update((ended[step], step) for step in at_steps if step in ended)
        for label, t, value in zip(labels, [float(t) for t in series.times],
                                   [float(v) for v in series.values], strict=True):
            entry = epochs.get(label)
            if entry is None:
                epochs[label] = (t, {name: value})
                continue
            entry[1][name] = value
            if t > entry[0]:  # the epoch's time: its latest value's
                epochs[label] = (t, entry[1])
    timeline: list[tuple[float, int, str, int, dict[str, float], int | None]] = []
    for label, (t, values_at) in sorted(epochs.items()):
        timeline.append((t, seq, "epoch", label, values_at, epoch_steps.get(label)))
        seq += 1
    samples: dict[float, dict[str, float]] = {}
    for t, sample_name, value in reader.system():
        samples.setdefault(t, {})[sample_name] = value
    for t, values_at in samples.items():
        timeline.append((t, seq, "system", 0, values_at, None))
        seq += 1
    timeline.sort(key=lambda item: (item[0], item[1]))
    feeds: list[_Feed] = []
    last_system: dict[str, float] = {}
    count = 0
    for t, at, stream, label, values_at, at_step in timeline:  # as HealthMonitor merges them
        if stream == "system":
            last_system = values_at
            count += 1
            feeds.append((t, at, stream, count, values_at, None))
        else:
            merged = values_at  # (this replay's own dict)
            if last_system:
                merged = {k: v for k, v in last_system.items() if "." not in k}
                merged.update(values_at)
            feeds.append((t, at, stream, label, merged, at_step))
    return columns, feeds


def _replay_points(monitor: HealthMonitor, columns: list[_Column],
                   feeds: list[_Feed]) -> list[Finding]:
    """Everything fed to ``monitor`` one observation at a time, in time order."""
    timeline: list[tuple[float, int, Feed]] = []
    for c in columns:
        order = range(len(c.values)) if c.order is None else c.order.tolist()
        for step, t, value, i in zip(c.steps.tolist(), c.times.tolist(), c.values.tolist(),
                                     order, strict=True):
            timeline.append((t, c.base + i, _step_feed(c.key, step, value, t)))
    for f in feeds:
        timeline.append((f[0], f[1], _system_feed(f[0], f[4]) if f[2] == "system"
                         else _epoch_feed(f[3], f[4], f[0], f[5])))
    timeline.sort(key=lambda item: (item[0], item[1]))
    for _, _, feed in timeline:
        feed(monitor)
    return monitor.findings


_Obs = tuple[float, int, int, float, str, "int | None", int]  # time, seq, label, value, ...


def _observations(feeds: list[_Feed]) -> dict[str, list[_Obs]]:
    """Each name's observations in the epoch and system feeds, in order: ``(time, seq, label,
    value, stream, at_step, position of the name in its feed)``."""
    by_name: dict[str, list[_Obs]] = {}
    for f in feeds:
        for position, (name, value) in enumerate(f[4].items()):
            obs = (f[0], f[1], f[3], value, f[2], f[5], position)
            found = by_name.get(name)
            if found is None:
                by_name[name] = [obs]
            else:
                found.append(obs)
    return by_name


def _by_key(detector: KeyedDetector, index: int, columns: list[_Column],
            by_name: dict[str, list[_Obs]]) -> list[tuple[tuple[float, int, int, int], Finding]]:
    """A keyed detector, one key at a time (its keys do not meet): each key's step column and
    its epoch/system observations merged in time order and given as one column."""
    import numpy as np

    step_columns = {c.key: c for c in columns} if "step" in detector.streams else {}
    out: list[tuple[tuple[float, int, int, int], Finding]] = []
    for key in dict.fromkeys([*step_columns, *by_name]):
        if not detector.matches(key):
            continue
        extra = [o for o in by_name.get(key, ()) if o[4] in detector.streams]
        column = step_columns.get(key)
        if column is None and not extra:
            continue
        if column is None:
            steps = np.zeros(0, dtype=np.int64)
            times = values = np.zeros(0)
        else:
            steps, times, values = column.steps, column.times, column.values
        if extra:  # after the step points at or before their time (their seq comes later)
            at = np.searchsorted(times, [o[0] for o in extra], side="right")
            at = at + np.arange(len(extra))
            is_extra = np.zeros(len(values) + len(extra), dtype=bool)
            is_extra[at] = True
            steps = _merged(steps, is_extra, [o[2] for o in extra], np.int64)
            times = _merged(times, is_extra, [o[0] for o in extra], np.float64)
            values = _merged(values, is_extra, [o[3] for o in extra], np.float64)
            place = np.cumsum(is_extra) - 1  # the extra at an index; else extras before it
        for i, finding in detector.update_column(key, steps, values, times=times):
            if extra and is_extra[i]:
                t, seq, _, _, stream, at_step, position = extra[int(place[i])]
                if stream == "epoch":
                    finding = _at_epoch(finding, at_step)
                out.append(((t, seq, index, position), finding))
            else:
                j = i - (int(place[i]) + 1 if extra else 0)
                assert column is not None
                point = j if column.order is None else int(column.order[j])
                out.append(((float(column.times[j]), column.base + point, index, 0), finding))
    return out


def _merged(column: Any, is_extra: Any, extra: list[Any], dtype: Any) -> Any:
    import numpy as np

    out = np.empty(len(is_extra), dtype=dtype)
    out[is_extra] = extra
    out[~is_extra] = column
    return out


def _by_feed(detector: Detector, index: int, columns: list[_Column],
             feeds: list[_Feed]) -> list[tuple[tuple[float, int, int, int], Finding]]:
    """Any other detector, one observation at a time in time order (those it says it does not
    need, by its ``needs(names)``, left out: they would change nothing)."""
    needs = getattr(detector, "needs", None)
    items: list[tuple[float, int, str, int, dict[str, float], int | None]] = [
        (f[0], f[1], f[2], f[3], f[4], f[5]) for f in feeds
        if f[2] in detector.streams and (needs is None or needs(f[4]))]
    if "step" in detector.streams:
        for c in columns:
            order = range(len(c.values)) if c.order is None else c.order.tolist()
            for step, t, value, i in zip(c.steps.tolist(), c.times.tolist(),
                                         c.values.tolist(), order, strict=True):
                items.append((t, c.base + i, "step", step, {c.key: value}, None))
        items.sort(key=lambda item: (item[0], item[1]))
    out: list[tuple[tuple[float, int, int, int], Finding]] = []
    for t, seq, stream, label, values, at_step in items:
        for finding in detector.update(label, values, time=t):
            out.append(((t, seq, index, 0),
                        _at_epoch(finding, at_step) if stream == "epoch" else finding))
    return out


def _step_feed(key: str, step: int, value: float, t: float) -> Feed:
    return lambda m: m.observe(key, step, value, time=t)


def _epoch_feed(epoch: int, values: dict[str, float], t: float, step: int | None) -> Feed:
    return lambda m: m.observe_epoch(epoch, values, time=t, step=step)


def _system_feed(t: float, values: dict[str, float]) -> Feed:
    return lambda m: m.observe_system(t, values)
