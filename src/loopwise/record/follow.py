"""Follow a run's record from a cursor, for what is new: the one path by which an exporter reads
a run, live (in the delivery process, while the run is written) and after the fact
(:func:`loopwise.export.backfill.backfill`); :func:`loopwise.export.payload.feed` hands what it
read to the exporter. With :mod:`loopwise.record.reader` it is the only code that reads the
store's SQL.

The store is SQLite in WAL mode: a read-only connection sees the last committed transaction and
never blocks the writer. Each read takes one snapshot (one read transaction) and returns what was
committed past the cursor:

* series: a key's chunks in ``id`` order are its points in logging order; the writer merges small
  chunks into the first of them, so a key's points are an append-only sequence although chunk
  rows change. The cursor is the number of points read per key; a read takes the bytes past it
  (``substr`` of the blobs, never a whole merged chunk again);
* events: by ``id``; system samples: by ``rowid`` (neither table is ever updated or deleted
  from), the rows of one sample (one time, written in one transaction) grouped back into it.

Every chunk a read takes points from is checked against its checksum first (once per chunk
and checksum: a chunk that grew by a merge is checked again). A series with a chunk that fails
it is damaged: none of its points from that chunk on are handed out, then or later, and the read
that finds it says so in :attr:`Increment.damage` (each a
:class:`~loopwise.record.verify.DamagedRecordError` naming the run, the file and the series);
the other series are read as before. The events, system samples and media rows are checked
against their batch checksums the same way (the one check of :mod:`loopwise.record.verify`, as
the reader does): a read ends at a batch's end, and a batch that fails is left out (its rows
are never handed out, the cursor moves past it) and named in :attr:`Increment.damage` (the
run, the file, the table and the batch's rows); the batches after it still flow.

An event's step is its ``data["step"]`` when it has one (health findings), else the global step
the run was at when it happened: the last step logged at or before its time (the step clock).
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from loopwise.record.folder import STORE_FILE
from loopwise.record.media_read import COLUMNS
from loopwise.record.store import connect, unpack
from loopwise.record.verify import DamagedRecordError, check_chunk, check_rows
from loopwise.utils.validate import check_count

CHUNK = 50_000  # points read at once at most
PARTS = {"events": "events", "system": "system samples", "histograms": "histograms",
         "images": "images", "texts": "texts"}  # a table's part, as the reader names it


class EventRow(NamedTuple):
    """One event: wall time (Unix seconds), level, kind, message, JSON data or None, and the
    global step it refers to."""

    time: float
    level: str
    kind: str
    message: str
    data: Mapping[str, Any] | None
    step: int


class Sample(NamedTuple):
    """One system sample: wall time and ``{name: value}``."""

    time: float
    values: Mapping[str, float]


@dataclass
class Cursor:
    """How far a follower has read: points per key, the last event id and system rowid, and the
    last (time, step) logged (the step clock carried from one read to the next)."""

    points: dict[str, int] = field(default_factory=dict)
    event_id: int = 0
    system_rowid: int = 0
    clock: tuple[float, int] = (float("-inf"), 0)
    media: dict[str, int] = field(default_factory=dict)  # the last id read per media table

    def state_dict(self) -> dict[str, Any]:
        return {"points": dict(self.points), "event_id": self.event_id,
                "system_rowid": self.system_rowid, "clock": list(self.clock),
                "media": dict(self.media)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        points, clock = state.get("points", {}), state.get("clock", (float("-inf"), 0))
        if not isinstance(points, Mapping) or not all(isinstance(k, str) for k in points):
            raise ValueError(f"state['points'] must map series names to point counts, got "
                             f"{points!r}")
        for name, count in points.items():
            check_count(count, what=f"state['points'][{name!r}]", hint="points delivered")
        for key in ("event_id", "system_rowid"):
            check_count(state.get(key, 0), what=f"state[{key!r}]")
        self.points = {name: int(count) for name, count in points.items()}
        self.event_id = int(state.get("event_id", 0))
        self.system_rowid = int(state.get("system_rowid", 0))
        self.clock = (float(clock[0]), int(clock[1]))
        media = state.get("media", {})
        if not isinstance(media, Mapping) or not all(k in COLUMNS for k in media):
            raise ValueError(f"state['media'] must map media tables ({', '.join(COLUMNS)}) to "
                             f"row ids, got {media!r}")
        for table, rowid in media.items():
            check_count(rowid, what=f"state['media'][{table!r}]", hint="a row id")
        self.media = {table: int(rowid) for table, rowid in media.items()}


@dataclass
class Increment:
    """What one read found past the cursor; ``damage``: the series this read found damaged
    (left out of ``columns``, from now on)."""

    columns: dict[str, tuple[array[int], array[float], array[float]]] = field(
        default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    system: list[Sample] = field(default_factory=list)
    damage: list[DamagedRecordError] = field(default_factory=list)
    media: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # (table, row)
    run_path: Path = Path()  # the run's folder (where an image row's file is)

    @property
    def points(self) -> int:
        return (sum(len(c[0]) for c in self.columns.values()) + len(self.events)
                + len(self.system) + len(self.media))


class Follower:
    """Reads a run's store past its :class:`Cursor` (see the module docstring)."""

    def __init__(self, run_path: str | Path, cursor: Cursor | None = None) -> None:
        self.path = Path(run_path) / STORE_FILE
        self.cursor = Cursor() if cursor is None else cursor
        self._conn: sqlite3.Connection | None = None
        self._verified: set[tuple[int, int]] = set()  # (chunk id, checksum) found intact
        self.damaged: dict[str, DamagedRecordError] = {}  # the series never handed out

    @property
    def step(self) -> int:
        """The last global step read (the run's step as far as this follower knows)."""
        return self.cursor.clock[1]

    def end(self) -> Cursor:
        """A cursor at the end of what is committed now (where a live mirror starts)."""
        out = Cursor(clock=self.cursor.clock)
        conn = self._connection()
        if conn is None:
            return out
        with _snapshot(conn):
            out.points = {name: int(n) for name, n in conn.execute(
                "SELECT k.name, SUM(c.n) FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
                "GROUP BY c.key_id")}
            out.event_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events")
                               .fetchone()[0])
            out.system_rowid = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM system")
                                   .fetchone()[0])
            for table in COLUMNS:
                out.media[table] = _max_id(conn, table)
        return out

    def remaining(self) -> int:
        """Points committed past the cursor (what a mirror that stops now leaves out). The
        exporters' own delivery notes (``exporter_*`` events, which the run records while a
        mirror closes) are not counted: a mirror need not deliver what it says of itself."""
        end = self.end()
        c = self.cursor
        return (sum(max(0, n - c.points.get(k, 0)) for k, n in end.points.items()
                    if k not in self.damaged)  # a damaged series is said, not undelivered
                + self._events_after(c.event_id) + self._samples_after(c.system_rowid)
                + sum(max(0, n - c.media.get(t, 0)) for t, n in end.media.items()))

    def _events_after(self, event_id: int) -> int:
        conn = self._connection()
        if conn is None:
            return 0
        row = conn.execute("SELECT COUNT(*) FROM events WHERE id > ? AND kind NOT LIKE "
                           "'exporter\\_%' ESCAPE '\\'", (event_id,)).fetchone()
        return int(row[0])

    def read(self, limit: int = CHUNK) -> Increment:
        """Everything committed past the cursor, about ``limit`` points at most; the cursor
        moves past what is returned."""
        out = Increment(run_path=self.path.parent)
        conn = self._connection()
        if conn is None:
            return out
        with _snapshot(conn):
            budget = self._read_columns(conn, out, limit)
            if budget > 0:  # events and samples once the series are read up to this snapshot
                self._read_events(conn, out, limit)
                self._read_system(conn, out, limit)
                self._read_media(conn, out, limit)
        dense = _densest(out)
        if dense is not None:
            self.cursor.clock = (dense[1][-1], dense[0][-1])
        return out

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals -------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.is_file():
            self._conn = connect(self.path, readonly=True)
            self._conn.isolation_level = None  # transactions are the explicit snapshots below
        return self._conn

    def _chunks(self, conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        sql = ("SELECT k.name, c.id, c.n, {} FROM scalar_chunks c JOIN keys k ON k.id = "
               "c.key_id ORDER BY c.key_id, c.id")
        try:
            return conn.execute(sql.format("c.sum")).fetchall()
        except sqlite3.OperationalError as exc:  # a store written before checksums
            if "no such column" not in str(exc):
                raise
            return conn.execute(sql.format("NULL")).fetchall()

    def _intact(self, conn: sqlite3.Connection, name: str, chunk_id: int,
                expected: int | None, out: Increment) -> bool:
        """Whether chunk ``chunk_id`` of ``name`` holds its checksum (checked once); a chunk
        that does not marks ``name`` damaged and says so in ``out``."""
        if expected is None or (chunk_id, expected) in self._verified:
            return True
        steps, times, vals = conn.execute("SELECT steps, times, vals FROM scalar_chunks "
                                          "WHERE id = ?", (chunk_id,)).fetchone()
        try:
            check_chunk(self.path, name, steps, times, vals, expected)
        except DamagedRecordError as exc:
            self.damaged[name] = exc
            out.damage.append(exc)
            return False
        self._verified.add((chunk_id, expected))
        return True

    def _read_columns(self, conn: sqlite3.Connection, out: Increment, limit: int) -> int:
        starts: dict[str, int] = {}
        for name, chunk_id, n, expected in self._chunks(conn):
            start = starts.get(name, 0)
            starts[name] = start + n
            done = self.cursor.points.get(name, 0)
            if limit <= 0 or start + n <= done or name in self.damaged:
                continue
            if not self._intact(conn, name, chunk_id, expected, out):
                continue
            skip = max(0, done - start)
            take = min(n - skip, limit)
            s, t, v = conn.execute(
                "SELECT substr(steps, ?, ?), substr(times, ?, ?), substr(vals, ?, ?) "
                "FROM scalar_chunks WHERE id = ?",
                (skip * 8 + 1, take * 8, skip * 8 + 1, take * 8, skip * 8 + 1, take * 8,
                 chunk_id)).fetchone()
            col = out.columns.get(name)
            if col is None:
                col = out.columns[name] = (array("q"), array("d"), array("d"))
            unpack("q", s, col[0])
            unpack("d", t, col[1])
            unpack("d", v, col[2])
            self.cursor.points[name] = done + take
            limit -= take
        return limit

    def _read_events(self, conn: sqlite3.Connection, out: Increment, limit: int) -> None:
        select = "SELECT id, time, level, kind, message, data FROM events WHERE id {} ORDER BY id"
        rows = conn.execute(select.format("> ?") + " LIMIT ?",
                            (self.cursor.event_id, limit)).fetchall()
        rows, self.cursor.event_id = self._checked(conn, "events", select, rows,
                                                   self.cursor.event_id, out)
        times: list[float] = []
        steps: list[int] = []
        if any(r[5] is None or '"step"' not in r[5] for r in rows):
            times, steps = self._clock(out)
        for _, t, level, kind, message, data_json in rows:
            data = None if data_json is None else json.loads(data_json)
            at = None if not isinstance(data, dict) else data.get("step")
            if type(at) is not int:
                idx = bisect.bisect_right(times, t) - 1
                at = steps[idx] if idx >= 0 else self.cursor.clock[1]
            out.events.append(EventRow(t, level, kind, message, data, at))

    def _clock(self, out: Increment) -> tuple[list[float], list[int]]:
        """(times, steps) of this read's densest series, after the carried last pair."""
        best = _densest(out)
        pairs = [] if best is None else sorted(zip(best[1], best[0], strict=True))
        times = [self.cursor.clock[0]] + [p[0] for p in pairs]
        steps = [self.cursor.clock[1]] + [p[1] for p in pairs]
        return times, steps

    def _read_system(self, conn: sqlite3.Connection, out: Increment, limit: int) -> None:
        select = "SELECT rowid, time, name, value FROM system WHERE rowid {} ORDER BY rowid"
        rows = conn.execute(select.format("> ?") + " LIMIT ?",
                            (self.cursor.system_rowid, limit * 16)).fetchall()
        if len(rows) == limit * 16:  # the last sample may be cut: leave it for the next read
            last = rows[-1][1]
            cut = [r for r in rows if r[1] != last]
            rows = cut or rows
        rows, self.cursor.system_rowid = self._checked(conn, "system", select, rows,
                                                       self.cursor.system_rowid, out)
        sample: dict[str, float] = {}
        sample_time: float | None = None
        for _, t, name, value in rows:
            if sample_time is not None and (t != sample_time or name in sample):
                out.system.append(Sample(sample_time, sample))
                sample = {}
            sample_time = t
            sample[name] = value
        if sample and sample_time is not None:
            out.system.append(Sample(sample_time, sample))

    def _read_media(self, conn: sqlite3.Connection, out: Increment, limit: int) -> None:
        for table, columns in COLUMNS.items():
            select = f"SELECT id, {columns} FROM {table} WHERE id {{}} ORDER BY id"
            after = self.cursor.media.get(table, 0)
            try:
                rows = conn.execute(select.format("> ?") + " LIMIT ?", (after, limit)).fetchall()
                rows, self.cursor.media[table] = self._checked(conn, table, select, rows,
                                                               after, out)
                out.media.extend((table, tuple(row[1:])) for row in rows)
            except sqlite3.OperationalError as exc:  # a store from before the media tables
                if "no such table" not in str(exc):
                    raise

    def _checked(self, conn: sqlite3.Connection, table: str, select: str,
                 rows: list[tuple[Any, ...]], after: int, out: Increment
                 ) -> tuple[list[tuple[Any, ...]], int]:
        """``rows`` of ``table`` (``(rowid, *columns)`` past rowid ``after``, in order), read on
        to the end of the last batch they reach, without the batches that fail their checksum
        (:func:`~loopwise.record.verify.check_rows`, each named in ``out.damage``); with the
        last rowid looked at (where the cursor goes). ``select``: the table's query with a
        ``{}`` for its rowid condition."""
        rows = [_as_read(table, r) for r in rows]
        if not rows:
            return rows, after
        last = int(rows[-1][0])
        try:
            sums = conn.execute("SELECT first, last, sum FROM row_sums WHERE tbl = ? AND "
                                "last > ? AND first <= ? ORDER BY first",
                                (table, after, last)).fetchall()
        except sqlite3.OperationalError as exc:  # a store written before checksums
            if "no such table" not in str(exc):
                raise
            return rows, last
        if not sums:
            return rows, last
        end = max(last, int(sums[-1][1]))
        start = min(after + 1, int(sums[0][0]))  # a cursor inside a batch: check it whole
        if end > last or start <= after:
            rows = [_as_read(table, r) for r in conn.execute(
                select.format("BETWEEN ? AND ?"), (start, end)).fetchall()]
        path = self.path
        bad: list[tuple[int, int]] = []
        for first, stop, expected in sums:
            try:
                check_rows(path, PARTS[table], rows, [(first, stop, expected)])
            except DamagedRecordError as exc:
                out.damage.append(exc)
                bad.append((int(first), int(stop)))
        kept = [r for r in rows if r[0] > after
                and not any(a <= r[0] <= b for a, b in bad)]
        return kept, end

    def _samples_after(self, rowid: int) -> int:
        conn = self._connection()
        if conn is None:
            return 0
        return int(conn.execute("SELECT COUNT(DISTINCT time) FROM system WHERE rowid > ?",
                                (rowid,)).fetchone()[0])


def _as_read(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row as the reader checks it: a system value stored as NULL (logged NaN) is NaN."""
    if table == "system":
        rowid, t, name, value = row
        return (rowid, float(t), str(name), math.nan if value is None else float(value))
    return row


def _max_id(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError as exc:  # a store from before the media tables
        if "no such table" not in str(exc):
            raise
        return 0


def _densest(out: Increment) -> tuple[array[int], array[float], array[float]] | None:
    best: tuple[array[int], array[float], array[float]] | None = None
    for col in out.columns.values():
        if len(col[0]) and (best is None or len(col[0]) > len(best[0])):
            best = col
    return best


class _snapshot:
    """One read transaction: every query inside sees the same committed state."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        self._conn.execute("COMMIT")
