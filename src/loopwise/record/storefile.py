"""The file of the run's embedded store: SQLite (WAL), its layout, its column codec and how it
is opened. :mod:`loopwise.record.store` writes it; :mod:`loopwise.record.reader` reads it.

Layout (schema version 1):

* ``keys(id, name)``: one row per scalar key.
* ``scalar_chunks(id, key_id, n, first_step, last_step, steps, times, vals)``: a key's series is
  stored in column chunks; ``steps`` is little-endian int64, ``times`` and ``vals`` little-endian
  float64, ``n`` values each. Chunks of one key in ``id`` order are in logging order. Small chunks
  are merged by the writer so that a long series reads back in a few rows.
* ``events(id, time, level, kind, message, data)``: ``data`` is JSON text.
* ``system(time, name, value)``: system samples (a NaN value is stored as NULL and read back as
  NaN).
* ``histograms(id, name, step, time, lo, hi, bins, counts, total, sum, sum_sq, nan, neg_inf,
  pos_inf)``: one binned histogram per row (:mod:`loopwise.record.histogram`): ``bins``
  equal-width bins from ``lo`` to ``hi``, ``counts`` little-endian uint32 (uint64 when one
  does not fit); about 360 bytes in the store at 64 bins.
* ``images(id, name, step, time, digest, width, height, bytes)``: the index of the run's images;
  the PNG itself is ``images/<digest>.png`` in the run folder (``digest``: SHA-256 of the file,
  so an image logged twice is stored once).
* ``texts(id, name, step, time, text)``: text entries.

Checksums (added later, so a store written before them still reads: a missing checksum is
*unverified*, never damaged): ``scalar_chunks.sum`` is the XXH3-64 of the key's name and the
chunk's three blobs (:func:`chunk_sum`); ``row_sums(tbl, first, last, sum)`` holds one XXH3-64
per committed batch of ``events``, ``system``, ``histograms``, ``images`` or ``texts`` rows
(rowids ``first..last``, :func:`rows_sum`). The reader checks them (:mod:`loopwise.record.verify`).

Permissions: the database file is created by loopwise (mode 0o666, so the umask decides, like
every other file of the run) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the database file's mode.
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import xxhash

from loopwise.record.errors import DiskFullError, is_disk_full
from loopwise.record.recorder import ColumnData

SCHEMA_VERSION = 1
MERGE_AFTER = 32  # merge a key's trailing small chunks once this many have piled up
SMALL_CHUNK = 4096

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS scalar_chunks (
    id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, n INTEGER NOT NULL,
    first_step INTEGER NOT NULL, last_step INTEGER NOT NULL,
    steps BLOB NOT NULL, times BLOB NOT NULL, vals BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS scalar_chunks_key ON scalar_chunks (key_id, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, level TEXT NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS system (time REAL NOT NULL, name TEXT NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS system_time ON system (time);
CREATE TABLE IF NOT EXISTS histograms (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, bins INTEGER NOT NULL, counts BLOB NOT NULL,
    total INTEGER NOT NULL, sum REAL NOT NULL, sum_sq REAL NOT NULL, nan INTEGER NOT NULL,
    neg_inf INTEGER NOT NULL, pos_inf INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS histograms_name ON histograms (name, id);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL,
    digest TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS images_name ON images (name, id);
CREATE TABLE IF NOT EXISTS texts (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL,
    text TEXT NOT NULL);
"""
MEDIA_SQL = {
    "histograms": "INSERT INTO histograms (name, step, time, lo, hi, bins, counts, total, sum,"
                  " sum_sq, nan, neg_inf, pos_inf) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "images": "INSERT INTO images (name, step, time, digest, width, height, bytes)"
              " VALUES (?,?,?,?,?,?,?)",
    "texts": "INSERT INTO texts (name, step, time, text) VALUES (?,?,?,?)",
}
"""The row of each media table (the columns after ``id``), as the writer inserts it."""

CHECKSUMS = """
CREATE TABLE IF NOT EXISTS row_sums (
    tbl TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, sum INTEGER NOT NULL);
"""

_BIG_ENDIAN = sys.byteorder == "big"
_SEP = b"\x1f"


def _signed(h: int) -> int:
    """An unsigned 64-bit hash as SQLite's signed INTEGER."""
    return h - (1 << 64) if h >= 1 << 63 else h


def chunk_sum(name: str, steps: bytes, times: bytes, vals: bytes) -> int:
    """The checksum of one column chunk of series ``name`` (its three little-endian blobs)."""
    h = xxhash.xxh3_64(name.encode("utf-8", "surrogatepass"))
    h.update(_SEP)
    h.update(steps)
    h.update(times)
    h.update(vals)
    return _signed(h.intdigest())


def rows_sum(rows: Sequence[Sequence[Any]]) -> int:
    """The checksum of a batch of ``events`` or ``system`` rows as they read back (REAL
    columns as floats, -0.0 as 0.0, a NULL system value as NaN)."""
    text = "\x1e".join("\x1f".join(repr(v + 0.0 if type(v) is float else v) for v in row)
                        for row in rows)
    return _signed(xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass")))


def add_checksums(conn: sqlite3.Connection) -> None:
    """Give a store (new, or written before checksums) its checksum column and table."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(scalar_chunks)")}
    if "sum" not in columns:
        conn.execute("ALTER TABLE scalar_chunks ADD COLUMN sum INTEGER")
    conn.executescript(CHECKSUMS)


@dataclass(frozen=True)
class Batch:
    """What one transaction committed: columns by key, event rows ``(time, level, kind,
    message, data_json)``, system samples ``(time, {name: value})`` and media rows
    ``(table, row)`` (``row`` as in :data:`MEDIA_SQL`)."""

    columns: dict[str, tuple[array[int], array[float], array[float]]]
    events: list[tuple[float, str, str, str, str | None]]
    system: list[tuple[float, Mapping[str, float]]]
    media: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


def pack(arr: array[Any]) -> bytes:
    """Bytes of ``arr`` in little-endian order."""
    if _BIG_ENDIAN:  # pragma: no cover - no big-endian CI machine
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def unpack(typecode: str, blob: bytes, out: array[Any] | None = None) -> array[Any]:
    """Append the little-endian values in ``blob`` to ``out`` (a new array when None)."""
    if out is not None and not _BIG_ENDIAN:
        out.frombytes(blob)
        return out
    part = array(typecode)
    part.frombytes(blob)
    if _BIG_ENDIAN:  # pragma: no cover
        part.byteswap()
    if out is None:
        return part
    out.extend(part)
    return out


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store; readers open it read-only (they never block the writer in WAL mode)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0,
                               check_same_thread=False)
    else:
        # created here with 0o666 so the umask decides (SQLite would create it 0644)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
        conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
        conn.execute("PRAGMA page_size=65536")  # long blobs: fewer overflow pages to chase
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA mmap_size=268435456")
    return conn


Columns = dict[str, tuple["array[int]", "array[float]", "array[float]"]]


def gather_columns(batches: Sequence[Mapping[str, ColumnData]],
                   rows: Sequence[tuple[int, float, Mapping[str, float]]],
                   refused: list[str] | None = None) -> Columns:
    """Column batches (``{key: (steps, times, values)}``) and ``(step, time, values)`` rows
    as one ``(steps, times, values)`` column per key, in the order given.

    A row or batch that cannot be stored (a step beyond int64, a time that is no float) is
    left out and described in ``refused``; the others are kept."""
    cols: Columns = {}
    for batch in batches:
        for key, (c_steps, c_times, c_vals) in batch.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = (array("q"), array("d"), array("d"))
            n = len(col[0])
            try:
                col[0].extend(c_steps)
                col[1].extend(c_times)
                col[2].extend(c_vals)
                if not len(col[0]) == len(col[1]) == len(col[2]):
                    raise ValueError("steps, times and values of unequal length")
            except (TypeError, ValueError, OverflowError) as exc:
                if refused is None:
                    raise
                del col[0][n:], col[1][n:], col[2][n:]
                refused.append(f"{len(c_steps)} values of {key!r} ({exc})")
    for step, wall_time, values in rows:
        for key, value in values.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = (array("q"), array("d"), array("d"))
            n = len(col[0])
            try:
                col[0].append(step)
                col[1].append(wall_time)
                col[2].append(value)
            except (TypeError, ValueError, OverflowError) as exc:
                if refused is None:
                    raise
                del col[0][n:], col[1][n:], col[2][n:]
                refused.append(f"{key!r} at step {step!r:.40} ({exc})")
    return cols


EventRow = tuple[float, str, str, str, "str | None"]


def storable_rows(events: list[EventRow], samples: list[tuple[float, Mapping[str, float]]],
                  refused: list[str]) -> tuple[list[EventRow],
                                               list[tuple[float, Mapping[str, float]]]]:
    """The event rows and system samples whose time and values are numbers (as floats); the
    others are described in ``refused`` and left out."""
    ok_events: list[EventRow] = []
    for t, level, kind, message, data in events:
        try:
            ok_events.append((_real(t), level, kind, message, data))
        except (TypeError, ValueError, OverflowError) as exc:
            refused.append(f"event {kind!r} ({exc})")
    ok_samples: list[tuple[float, Mapping[str, float]]] = []
    for t, values in samples:
        try:
            ok_samples.append((_real(t), {k: _real(v, nan=True) for k, v in values.items()}))
        except (TypeError, ValueError, OverflowError) as exc:
            refused.append(f"a system sample ({exc})")
    return ok_events, ok_samples


def _real(value: object, *, nan: bool = False) -> float:
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{value!r:.40} is not a number")
    out = float(value)  # type: ignore[arg-type]
    if not nan and not math.isfinite(out):
        raise ValueError(f"time {out!r} is not finite")
    return out + 0.0  # -0.0 reads back as 0.0


def insert_rows(conn: sqlite3.Connection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` to ``events`` (without id), ``system`` or a media table (the row as in
    :data:`MEDIA_SQL`) with their batch checksum."""
    if not rows:
        return
    last = int(conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0])
    if table == "events":
        conn.executemany("INSERT INTO events (time, level, kind, message, data) "
                         "VALUES (?, ?, ?, ?, ?)", rows)
    elif table == "system":
        conn.executemany("INSERT INTO system (time, name, value) VALUES (?, ?, ?)", rows)
    else:
        conn.executemany(MEDIA_SQL[table], rows)
    conn.execute("INSERT INTO row_sums (tbl, first, last, sum) VALUES (?, ?, ?, ?)",
                 (table, last + 1, last + len(rows), rows_sum(rows)))


def check_store(path: Path, *, hint: str) -> None:
    """Refuse a store SQLite cannot read whole (truncated, a bad header, a damaged page) before
    anything is written: :class:`~loopwise.record.errors.CorruptRecordError` naming ``path``.
    Read-only; a missing store is fine (a run that never logged)."""
    from loopwise.record.errors import CorruptRecordError

    if not path.exists():
        return
    conn = None
    try:
        # immutable: no -wal/-shm file is made, so a refused run's folder stays as it was;
        # but a -wal left by a writer that could not checkpoint (a full disk, a kill) holds
        # committed pages the main file lacks: read it as SQLite would (it is already there)
        wal = path.with_name(path.name + "-wal")
        mode = "ro" if wal.is_file() and wal.stat().st_size > 0 else "ro&immutable=1"
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True)
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise CorruptRecordError(path, f"SQLite: {exc}", hint=hint) from exc
    finally:
        if conn is not None:
            conn.close()
    if problems != ["ok"]:
        raise CorruptRecordError(path, f"SQLite: {'; '.join(problems)}"[:300], hint=hint)
    if tables and not {"keys", "scalar_chunks", "events"} <= tables:
        raise CorruptRecordError(path, "not a loopwise store (its tables are missing)",
                                 hint=hint)


def open_store(path: Path) -> tuple[sqlite3.Connection, dict[str, int]]:
    """Open (creating it when new) the store for writing: the connection and the ids of the
    keys it holds. A full disk is :class:`~loopwise.record.errors.DiskFullError`."""
    conn = None
    try:
        conn = connect(path)
        with conn:
            conn.executescript(SCHEMA)
            add_checksums(conn)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        return conn, {name: key_id for key_id, name in conn.execute("SELECT id, name FROM keys")}
    except (OSError, sqlite3.Error) as exc:
        if conn is not None:
            conn.close()
        if is_disk_full(exc):
            raise DiskFullError(path) from exc
        raise


def merge_chunks(conn: sqlite3.Connection, key_id: int) -> None:
    """Merge the trailing chunks of one key that are below the small-chunk size."""
    rows = conn.execute(
        "SELECT id, sum, steps, times, vals FROM scalar_chunks WHERE key_id = ? AND n < ? "
        "AND id > COALESCE((SELECT MAX(id) FROM scalar_chunks WHERE key_id = ? AND n >= ?),"
        " 0) ORDER BY id",
        (key_id, SMALL_CHUNK * MERGE_AFTER, key_id, SMALL_CHUNK * MERGE_AFTER),
    ).fetchall()
    if len(rows) < 2:
        return
    name = conn.execute("SELECT name FROM keys WHERE id = ?", (key_id,)).fetchone()[0]
    if any(c is not None and c != chunk_sum(name, s, t, v) for _, c, s, t, v in rows):
        return  # a damaged chunk is left as it is: merged, its damage would get a valid sum
    steps: array[int] = array("q")
    times: array[float] = array("d")
    vals: array[float] = array("d")
    for _, _, s, t, v in rows:
        unpack("q", s, steps)
        unpack("d", t, times)
        unpack("d", v, vals)
    first_id = rows[0][0]
    b_steps, b_times, b_vals = pack(steps), pack(times), pack(vals)
    conn.execute(
        "UPDATE scalar_chunks SET n = ?, first_step = ?, last_step = ?, steps = ?, times = ?,"
        " vals = ?, sum = ? WHERE id = ?",
        (len(steps), steps[0], steps[-1], b_steps, b_times, b_vals,
         chunk_sum(name, b_steps, b_times, b_vals), first_id),
    )
    conn.executemany(
        "DELETE FROM scalar_chunks WHERE id = ?", [(r[0],) for r in rows[1:]]
    )
