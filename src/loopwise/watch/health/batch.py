"""The batched replay of a finished run (``analyze_run``, ``loopwise doctor``): whole columns.

Feeding a 2,000,000-step run to the detectors one point at a time takes minutes; this gives the
same findings, in the same order, in seconds (issue 25). Detectors do not share state, so each
is replayed on its own, and the findings are put back in the order the point-by-point replay
(:func:`loopwise.watch.health.replay.analyze_run` with ``batch=False``) reports them: by time,
then order of arrival, then detector, then the key's place in its observation.

- A keyed detector (:class:`~loopwise.watch.health.base.KeyedDetector` whose ``update`` is the
  base's) keeps one state per key and never lets keys meet: each key it watches gets one call of
  ``update_column`` with all its observations of the streams it reads, in time order: the step
  series, the epoch table's column (the epoch's value, or the latest system sample's when the
  epoch has none) and the system samples.
- Any other detector is fed observation by observation, as the runner would, skipping the
  epochs its ``needs(values)`` (when it has one) says cannot change anything.

The epoch stream is a table (:class:`EpochTable`): one row per epoch label, one column per name,
built with numpy from the epoch summaries and the series named by hand (``val_*``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from loopwise.record.series import sorted_union
from loopwise.watch.health.base import Detector, Finding, KeyedDetector
from loopwise.watch.health.runner import _at_epoch

Rank = tuple[float, int, int, int]  # time, order of arrival, detector, place in the feed


class Column(NamedTuple):
    """One series of the step stream, in time order (``order``: its points' positions in the
    series, None when it already was), and ``base``: its first point's place in the order of
    arrival."""

    key: str
    steps: Any
    times: Any
    values: Any
    order: Any
    base: int


def step_column(key: str, steps: Any, times: Any, values: Any, base: int) -> Column:
    """A step series as a :class:`Column` (sorted by time, stably, when it is not)."""
    s = np.asarray(steps, dtype=np.int64)
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):
        return Column(key, s, t, v, None, base)
    order = np.argsort(t, kind="stable")
    return Column(key, s[order], t[order], v[order], order, base)


class EpochSource(NamedTuple):
    """A series of the epoch stream: its name there, whether it is an epoch summary (its
    steps map to epochs through ``ended``) or a series named by hand (its steps are its
    labels), and its points."""

    name: str
    summary: bool
    steps: Any
    times: Any
    values: Any


@dataclass
class EpochTable:
    """The epoch stream: ``labels`` (sorted), each one's ``times`` (its latest point's) and
    ``seq`` (its order of arrival), ``at_steps`` (where the epoch ended, -1 when unknown);
    per name its ``values``, ``present`` mask and ``first`` (the index of the series that
    wrote it first at each label: the name's place in that epoch's mapping)."""

    labels: Any
    times: Any
    seq: Any
    at_steps: Any
    values: dict[str, Any]
    present: dict[str, Any]
    first: dict[str, Any]

    def names_at(self, row: int) -> list[str]:
        """The epoch's own names at ``row``, in the order its mapping has them."""
        here = [(int(self.first[n][row]), i, n) for i, n in enumerate(self.values)
                if self.present[n][row]]
        return [n for _, _, n in sorted(here)]

    def mapping(self, row: int) -> dict[str, float]:
        return {n: float(self.values[n][row]) for n in self.names_at(row)}


def epoch_table(sources: Sequence[EpochSource], ended: dict[int, int], seq0: int) -> EpochTable:
    """The epoch stream of ``sources`` (in the run's key order) as a table; ``seq0``: the order
    of arrival of its first label (after every step point)."""
    labelled = []
    at_steps: dict[int, int] = {}
    for source in sources:
        steps = np.asarray(source.steps, dtype=np.int64)
        if source.summary and ended:
            plain = steps.tolist()
            labels = np.asarray([ended.get(s, s) for s in plain], dtype=np.int64)
            at_steps.update((ended[s], s) for s in plain if s in ended)
        else:
            labels = steps
        labelled.append((source, labels))
    every = sorted_union([lab for _, lab in labelled])
    times = np.full(len(every), -np.inf)
    values: dict[str, Any] = {}
    present: dict[str, Any] = {}
    first: dict[str, Any] = {}
    for index, (source, labels) in enumerate(labelled):
        t = np.asarray(source.times, dtype=np.float64)
        v = np.asarray(source.values, dtype=np.float64)
        at = np.searchsorted(every, labels)
        if len(at) > 1 and not bool(np.all(at[1:] > at[:-1])):  # several points at a label
            np.maximum.at(times, at, t)
            last = len(at) - 1 - np.unique(at[::-1], return_index=True)[1]  # the last wins
            at, v = at[last], v[last]
        else:
            times[at] = np.maximum(times[at], t)
        if source.name not in values:
            values[source.name] = np.zeros(len(every))
            present[source.name] = np.zeros(len(every), dtype=bool)
            first[source.name] = np.full(len(every), len(labelled))
        values[source.name][at] = v
        fresh = at[~present[source.name][at]]
        first[source.name][fresh] = index
        present[source.name][at] = True
    seq = seq0 + np.arange(len(every))  # appended in label order; they arrive by time
    steps_at = np.full(len(every), -1)
    if at_steps:  # a few epochs among (perhaps) millions of labels
        ends = np.asarray(list(at_steps), dtype=np.int64)
        steps_at[np.searchsorted(every, ends)] = list(at_steps.values())
    return EpochTable(every, times, seq, steps_at, values, present, first)


class SystemFeed(NamedTuple):
    """One system sample as the runner receives it (all its names at one time)."""

    time: float
    seq: int
    number: int  # the sample's number (its step on the system stream)
    values: dict[str, float]


def system_feeds(rows: Sequence[tuple[float, str, float]], seq0: int) -> list[SystemFeed]:
    """The system samples grouped by their time, in time order, numbered as the runner counts
    them; ``seq0``: the order of arrival of the first (after every epoch)."""
    samples: dict[float, dict[str, float]] = {}
    for t, name, value in rows:
        samples.setdefault(t, {})[name] = value
    arrival = sorted(((t, seq0 + i, values) for i, (t, values) in enumerate(samples.items())),
                     key=lambda item: (item[0], item[1]))
    return [SystemFeed(t, seq, count, values)
            for count, (t, seq, values) in enumerate(arrival, start=1)]


def replay(detectors: Sequence[Detector], columns: list[Column], table: EpochTable,
           system: list[SystemFeed]) -> list[Finding]:
    """Every detector replayed on the three streams; the findings in the runner's order."""
    last_system = _last_system(table, system)
    ranked: list[tuple[Rank, Finding]] = []
    for index, detector in enumerate(detectors):
        if isinstance(detector, KeyedDetector) and type(detector).update is KeyedDetector.update:
            ranked += _by_key(detector, index, columns, table, system, last_system)
        else:
            ranked += _by_feed(detector, index, columns, table, system, last_system)
    ranked.sort(key=lambda item: item[0])  # stable: one detector's findings keep their order
    return [finding for _, finding in ranked]


def _last_system(table: EpochTable, system: list[SystemFeed]) -> Any:
    """For each epoch, the index of the latest system sample before it (-1: none). A sample
    at the same time arrives after the epoch (it was appended later)."""
    times = np.asarray([f.time for f in system], dtype=np.float64)
    return np.searchsorted(times, table.times, side="left") - 1


def _means(feed: SystemFeed) -> dict[str, float]:
    """What an epoch takes from a system sample: its means (names without ``.min``...)."""
    return {k: v for k, v in feed.values.items() if "." not in k}


def _epoch_place(table: EpochTable, system: list[SystemFeed], last_system: Any, row: int,
                 name: str) -> int:
    """``name``'s place in the mapping the runner gives the detectors at epoch ``row``: the
    latest sample's means first, then the epoch's own names."""
    s = int(last_system[row])
    merged = dict(_means(system[s])) if s >= 0 else {}
    merged.update(dict.fromkeys(table.names_at(row), 0.0))
    return list(merged).index(name)


def _epoch_mapping(table: EpochTable, system: list[SystemFeed], last_system: Any,
                   row: int) -> dict[str, float]:
    s = int(last_system[row])
    merged = _means(system[s]) if s >= 0 else {}
    merged.update(table.mapping(row))
    return merged


def _by_key(detector: KeyedDetector, index: int, columns: list[Column], table: EpochTable,
            system: list[SystemFeed], last_system: Any) -> list[tuple[Rank, Finding]]:
    streams = detector.streams
    step_columns = {c.key: c for c in columns} if "step" in streams else {}
    epoch_names = list(table.values) if "epoch" in streams else []
    system_names: dict[str, None] = {}
    if streams & {"epoch", "system"}:
        for feed in system:
            system_names.update(dict.fromkeys(_means(feed) if "system" not in streams
                                              else feed.values))
    out: list[tuple[Rank, Finding]] = []
    for key in dict.fromkeys([*step_columns, *epoch_names, *system_names]):
        if not detector.matches(key):
            continue
        out += _one_key(detector, index, key, step_columns.get(key), table, system, last_system)
    return out


def _one_key(detector: KeyedDetector, index: int, key: str, column: Column | None,
             table: EpochTable, system: list[SystemFeed],
             last_system: Any) -> list[tuple[Rank, Finding]]:
    """One key's observations of the streams ``detector`` reads, in order of arrival, as one
    column; the findings ranked as the runner would report them."""
    streams = detector.streams
    # the epoch and system observations: (time, seq, label, value, stream code, row)
    parts: list[tuple[Any, ...]] = []
    if "epoch" in streams and len(table.labels):
        own = table.present.get(key)
        has = np.zeros(len(table.labels), dtype=bool) if own is None else own.copy()
        value = np.zeros(len(table.labels)) if own is None else table.values[key].copy()
        sample_has = np.asarray([key in f.values and "." not in key for f in system] + [False])
        sample_value = np.asarray([f.values.get(key, 0.0) for f in system] + [0.0])
        from_sample = ~has & sample_has[last_system]  # index -1: the False at the end
        if from_sample.any():
            value[from_sample] = sample_value[last_system[from_sample]]
            has |= from_sample
        rows = np.flatnonzero(has)
        t = table.times[rows]
        if len(rows) > 1 and not bool(np.all(t[1:] >= t[:-1])):  # in order of arrival
            rows = rows[np.lexsort((table.seq[rows], t))]
        if len(rows):
            parts.append((table.times[rows], table.seq[rows], table.labels[rows], value[rows],
                          np.zeros(len(rows), dtype=np.int64), rows))
    if "system" in streams:
        mine = [(f.time, f.seq, f.number, f.values[key], i) for i, f in enumerate(system)
                if key in f.values]
        if mine:
            t, seq, count, value, rows = (np.asarray(c) for c in zip(*mine, strict=True))
            parts.append((t.astype(np.float64), seq.astype(np.int64), count.astype(np.int64),
                          value.astype(np.float64), np.ones(len(rows), dtype=np.int64),
                          rows.astype(np.int64)))
    extra: tuple[Any, ...] | None = None
    if len(parts) == 1:
        extra = parts[0]
    elif parts:
        joined = [np.concatenate(c) for c in zip(*parts, strict=True)]
        order = np.lexsort((joined[1], joined[0]))
        extra = tuple(c[order] for c in joined)
    def extra_rank(j: int, finding: Finding) -> tuple[Rank, Finding]:
        assert extra is not None
        when, arrival, row = float(extra[0][j]), int(extra[1][j]), int(extra[5][j])
        if int(extra[4][j]) == 0:  # an epoch: "at epoch N (step S)", placed in its mapping
            at_step = int(table.at_steps[row])
            finding = _at_epoch(finding, None if at_step < 0 else at_step)
            position = _epoch_place(table, system, last_system, row, key)
        else:
            position = list(system[row].values).index(key)
        return (when, arrival, index, position), finding

    def step_rank(j: int, finding: Finding) -> tuple[Rank, Finding]:
        assert column is not None
        point = j if column.order is None else int(column.order[j])
        return (float(column.times[j]), column.base + point, index, 0), finding

    if column is None:
        if extra is None:
            return []
        return [extra_rank(i, f) for i, f in detector.update_column(
            key, extra[2], extra[3], times=extra[0])]
    steps, times, values = column.steps, column.times, column.values
    if extra is None:
        return [step_rank(i, f) for i, f in detector.update_column(key, steps, values,
                                                                    times=times)]
    # each extra observation goes after the step points at or before its time (its seq
    # comes later): a few are fed between slices of the column, many merged into it
    before = np.searchsorted(times, extra[0], side="right").tolist()
    out: list[tuple[Rank, Finding]] = []
    if len(before) <= _SLICED:
        done = 0
        for j, stop in enumerate([*before, len(values)]):
            if stop > done:
                out += [step_rank(done + i, f) for i, f in detector.update_column(
                    key, steps[done:stop], values[done:stop], times=times[done:stop])]
                done = stop
            if j < len(before):
                out += [extra_rank(j, f) for _, f in detector.update_column(
                    key, extra[2][j:j + 1], extra[3][j:j + 1], times=extra[0][j:j + 1])]
        return out
    at = np.asarray(before) + np.arange(len(before))  # the extras' places in the merge
    is_extra = np.zeros(len(values) + len(before), dtype=bool)
    is_extra[at] = True
    merged = (_merged(steps, is_extra, extra[2]), _merged(values, is_extra, extra[3]),
              _merged(times, is_extra, extra[0]))
    for i, finding in detector.update_column(key, merged[0], merged[1], times=merged[2]):
        j = int(np.searchsorted(at, i))  # the extras before index i
        out.append(extra_rank(j, finding) if j < len(at) and at[j] == i
                   else step_rank(i - j, finding))
    return out


_SLICED = 64  # extra observations up to which a step column is fed in slices between them


def _merged(column: Any, is_extra: Any, extra: Any) -> Any:
    out = np.empty(len(is_extra), dtype=column.dtype)
    out[is_extra] = extra
    out[~is_extra] = column
    return out


def _by_feed(detector: Detector, index: int, columns: list[Column], table: EpochTable,
             system: list[SystemFeed], last_system: Any) -> list[tuple[Rank, Finding]]:
    """Any other detector, one observation at a time in order of arrival; the epochs its
    ``needs(values)`` says cannot change anything are left out (decided once per set of
    names)."""
    streams = detector.streams
    needs = getattr(detector, "needs", None)
    items: list[tuple[float, int, str, int, dict[str, float], int | None]] = []
    if "epoch" in streams:
        for row in _epochs_needed(table, system, last_system, needs):
            ended_at = int(table.at_steps[row])
            items.append((float(table.times[row]), int(table.seq[row]), "epoch",
                          int(table.labels[row]), _epoch_mapping(table, system, last_system,
                                                                 row),
                          None if ended_at < 0 else ended_at))
    if "system" in streams:
        items += [(f.time, f.seq, "system", f.number, f.values, None) for f in system
                  if needs is None or needs(f.values)]
    if "step" in streams:
        for c in columns:
            order = range(len(c.values)) if c.order is None else c.order.tolist()
            for step, t, value, i in zip(c.steps.tolist(), c.times.tolist(),
                                         c.values.tolist(), order, strict=True):
                items.append((t, c.base + i, "step", step, {c.key: value}, None))
    items.sort(key=lambda item: (item[0], item[1]))
    out: list[tuple[Rank, Finding]] = []
    for t, seq, stream, label, values, at_step in items:
        for finding in detector.update(label, values, time=t):
            out.append(((t, seq, index, 0),
                        _at_epoch(finding, at_step) if stream == "epoch" else finding))
    return out


def _epochs_needed(table: EpochTable, system: list[SystemFeed], last_system: Any,
                   needs: Any) -> list[int]:
    """The epoch rows to feed: all of them, or those whose names ``needs`` wants (asked once
    per distinct set of names: the epoch's own, and the latest system sample's)."""
    n = len(table.labels)
    if needs is None or not n:
        return list(range(n))
    names = list(table.values)
    if len(names) > 40 or len(system) >= 1 << 20:  # (then one by one)
        return [row for row in range(n) if needs(_epoch_mapping(table, system, last_system,
                                                                 row))]
    code = np.zeros(n, dtype=np.int64)
    for bit, name in enumerate(names):
        code |= table.present[name].astype(np.int64) << bit
    code = (code << 21) | (last_system + 1)  # the epoch's names and its system sample
    order = np.argsort(code, kind="stable")
    ordered = code[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    wanted = np.zeros(n, dtype=bool)
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True):
        row = int(order[a])  # one epoch with this set of names stands for all of them
        if needs(_epoch_mapping(table, system, last_system, row)):
            wanted[order[a:b]] = True
    rows: list[int] = np.flatnonzero(wanted).tolist()
    return rows
