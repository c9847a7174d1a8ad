"""The file of the run's embedded store: SQLite (WAL), its layout, its column codec and how it
is opened. :mod:`loopwise.record.store` writes it; :mod:`loopwise.record.reader` reads it.

Layout (schema version 1):

* ``keys(id, name)``: one row per scalar key.
* ``scalar_chunks(id, key_id, n, first_step, last_step, steps, times, vals)``: a key's series is
  stored in column chunks; ``steps`` is little-endian int64, ``times`` and ``vals`` little-endian
  float64, ``n`` values each. Chunks of one key in ``id`` order are in logging order. Small chunks
  are merged by the writer so that a long series reads back in a few rows.
* ``events(id, time, level, kind, message, data)``: ``data`` is JSON text.
* ``system(time, name, value)``: system samples.

Permissions: the database file is created by loopwise (mode 0o666, so the umask decides, like
every other file of the run) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the database file's mode.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
"""

_BIG_ENDIAN = sys.byteorder == "big"


@dataclass(frozen=True)
class Batch:
    """What one transaction committed: columns by key, event rows ``(time, level, kind,
    message, data_json)`` and system samples ``(time, {name: value})``."""

    columns: dict[str, tuple[array[int], array[float], array[float]]]
    events: list[tuple[float, str, str, str, str | None]]
    system: list[tuple[float, Mapping[str, float]]]


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


def gather_columns(batches: Sequence[Mapping[str, ColumnData]],
                   rows: Sequence[tuple[int, float, Mapping[str, float]]]
                   ) -> dict[str, tuple[array[int], array[float], array[float]]]:
    """Column batches (``{key: (steps, times, values)}``) and ``(step, time, values)`` rows
    as one ``(steps, times, values)`` column per key, in the order given."""
    cols: dict[str, tuple[array[int], array[float], array[float]]] = {}
    for batch in batches:
        for key, (c_steps, c_times, c_vals) in batch.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = (array("q"), array("d"), array("d"))
            col[0].extend(c_steps)
            col[1].extend(c_times)
            col[2].extend(c_vals)
    for step, wall_time, values in rows:
        for key, value in values.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = (array("q"), array("d"), array("d"))
            col[0].append(step)
            col[1].append(wall_time)
            col[2].append(value)
    return cols


def open_store(path: Path) -> tuple[sqlite3.Connection, dict[str, int]]:
    """Open (creating it when new) the store for writing: the connection and the ids of the
    keys it holds. A full disk is :class:`~loopwise.record.errors.DiskFullError`."""
    conn = None
    try:
        conn = connect(path)
        with conn:
            conn.executescript(SCHEMA)
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
        "SELECT id, n, steps, times, vals FROM scalar_chunks WHERE key_id = ? AND n < ? "
        "AND id > COALESCE((SELECT MAX(id) FROM scalar_chunks WHERE key_id = ? AND n >= ?),"
        " 0) ORDER BY id",
        (key_id, SMALL_CHUNK * MERGE_AFTER, key_id, SMALL_CHUNK * MERGE_AFTER),
    ).fetchall()
    if len(rows) < 2:
        return
    steps: array[int] = array("q")
    times: array[float] = array("d")
    vals: array[float] = array("d")
    for _, _, s, t, v in rows:
        unpack("q", s, steps)
        unpack("d", t, times)
        unpack("d", v, vals)
    first_id = rows[0][0]
    conn.execute(
        "UPDATE scalar_chunks SET n = ?, first_step = ?, last_step = ?, steps = ?, times = ?,"
        " vals = ? WHERE id = ?",
        (len(steps), steps[0], steps[-1], pack(steps), pack(times), pack(vals), first_id),
    )
    conn.executemany(
        "DELETE FROM scalar_chunks WHERE id = ?", [(r[0],) for r in rows[1:]]
    )
