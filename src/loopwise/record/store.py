"""The run's embedded store: SQLite (WAL) written by one background thread.

Layout (schema version 1):

* ``keys(id, name)``: one row per scalar key.
* ``scalar_chunks(id, key_id, n, first_step, last_step, steps, times, vals)``: a key's series is
  stored in column chunks; ``steps`` is little-endian int64, ``times`` and ``vals`` little-endian
  float64, ``n`` values each. Chunks of one key in ``id`` order are in logging order. Small chunks
  are merged by the writer so that a long series reads back in a few rows.
* ``events(id, time, level, kind, message, data)``: ``data`` is JSON text.
* ``system(time, name, value)``: system samples.

Threading: the ``add_*`` methods are called from the training thread and only append to
thread-safe deques (no locks, no I/O). The writer thread drains them in one transaction every
``flush_interval`` seconds (default 0.2 s) and on ``flush()``/``close()``. SQLite runs with
``synchronous=NORMAL`` in WAL mode: a committed batch survives the process being killed; a power
cut may lose the last batch.

Errors: the first error of the writer stops it and is raised to the calling thread at its next
``add_*``/``flush()`` (once more at ``close()`` only if it was never raised). A full disk
(``ENOSPC``, ``EDQUOT``, ``SQLITE_FULL``) is a :class:`~loopwise.record.errors.DiskFullError`
("no space left on the device holding ..."); the batches committed before stay readable.

Permissions: the database file is created by loopwise (mode 0o666, so the umask decides, like
every other file of the run) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the database file's mode.

Backpressure: when more than ``max_pending`` items wait, the calling thread blocks until the
writer has caught up (nothing is dropped) and the store records one ``store_backpressure`` event.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record.errors import DiskFullError, is_disk_full
from loopwise.record.recorder import ColumnData

SCHEMA_VERSION = 1
STORE_FILE = "store.sqlite"
_MERGE_AFTER = 32  # merge a key's trailing small chunks once this many have piled up
_SMALL_CHUNK = 4096

_SCHEMA = """
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


class StoreWriter:
    """Buffers rows from any thread and writes them from one background thread."""

    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = 0.2,
        max_pending: int = 1_000_000,
        on_tick: Callable[[], None] | None = None,
        on_batch: Callable[[Batch], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not flush_interval > 0 or flush_interval > 1.0:
            raise ValueError(f"flush_interval must be in (0, 1] seconds, got {flush_interval!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        self.path = path
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._on_tick = on_tick
        self._on_batch = on_batch
        self._on_error = on_error
        self._clock = clock
        self._scalars: deque[tuple[int, float, Mapping[str, float]]] = deque()
        self._events: deque[tuple[float, str, str, str, str | None]] = deque()
        self._system: deque[tuple[float, Mapping[str, float]]] = deque()
        self._columns: deque[tuple[int, Mapping[str, ColumnData]]] = deque()
        self._count_lock = threading.Lock()
        self._column_values = 0  # values waiting in _columns (guarded by _count_lock)
        self._db_lock = threading.Lock()
        self._drained = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._key_ids: dict[str, int] = {}
        self._small_chunks: dict[int, int] = {}
        self._backpressure_reported = False
        self._error: BaseException | None = None
        self._error_raised = False
        try:
            self._conn = connect(path)
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            for key_id, name in self._conn.execute("SELECT id, name FROM keys"):
                self._key_ids[name] = key_id
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            if is_disk_full(exc):
                raise DiskFullError(path) from exc
            raise
        self._thread = threading.Thread(target=self._loop, name="loopwise-store", daemon=True)
        self._thread.start()

    # -- calling thread ----------------------------------------------------------------------
    def add_scalars(self, step: int, wall_time: float, values: Mapping[str, float]) -> None:
        """Queue one step's values (``values`` must not be mutated afterwards)."""
        if self._error is not None:
            self._raise_error()
        self._scalars.append((step, wall_time, values))
        if len(self._scalars) > self._max_pending:
            self._backpressure()

    def add_rows(self, rows: Sequence[tuple[int, float, Mapping[str, float]]]) -> None:
        """Queue several ``(step, wall_time, values)`` rows at once."""
        if self._error is not None:
            self._raise_error()
        self._scalars.extend(rows)
        if len(self._scalars) > self._max_pending:
            self._backpressure()

    def add_columns(self, columns: Mapping[str, ColumnData]) -> None:
        """Queue whole columns: ``{key: (steps, wall_times, values)}`` (not reused after)."""
        if self._error is not None:
            self._raise_error()
        n = sum(len(c[0]) for c in columns.values())
        with self._count_lock:
            self._column_values += n
            over = self._column_values > self._max_pending
        self._columns.append((n, columns))
        if over:
            self._backpressure()

    def add_event(self, wall_time: float, level: str, kind: str, message: str,
                  data_json: str | None) -> None:
        if self._error is not None:
            self._raise_error()
        self._events.append((wall_time, level, kind, message, data_json))
        if level == "error":
            self._wake.set()

    def add_system(self, wall_time: float, values: Mapping[str, float]) -> None:
        if self._error is not None:
            self._raise_error()
        self._system.append((wall_time, values))

    def pending(self) -> int:
        return len(self._scalars) + len(self._events) + len(self._system) + len(self._columns)

    def flush(self) -> None:
        """Write everything queued so far, from the calling thread; raise a writer error."""
        self._raise_error()
        with self._db_lock:
            try:
                self._drain()
            except Exception as exc:
                self._fail(exc)
                self._raise_error()

    def close(self) -> None:
        """Stop the thread after a last drain. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        with self._db_lock:
            try:
                if self._error is None:
                    self._drain()
                    self._merge_all()
            except Exception as exc:
                self._fail(exc)
            finally:
                self._conn.close()
        if not self._error_raised:
            self._raise_error()

    @property
    def error(self) -> BaseException | None:
        """The writer's first error (None while it works)."""
        return self._error

    # -- writer thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                with self._db_lock:
                    if self._stop.is_set():
                        return
                    self._drain()
                if self._on_tick is not None:
                    self._on_tick()
            except Exception as exc:  # keep the first error; the owner re-raises it
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        """Keep the first error (a full disk as :class:`DiskFullError`) and tell the owner."""
        if self._error is not None:
            return
        error = exc
        if is_disk_full(exc):
            error = DiskFullError(self.path)
            error.__cause__ = exc
        if self._on_error is not None:  # first, so the caller sees the run already failed
            with contextlib.suppress(Exception):  # the hook must not hide the error itself
                self._on_error(error)
        self._error = error
        with self._drained:
            self._drained.notify_all()

    def _raise_error(self) -> None:
        if self._error is None:
            return
        self._error_raised = True
        if isinstance(self._error, DiskFullError):  # a fresh one: no traceback piling up
            raise DiskFullError(self.path) from self._error.__cause__
        raise RuntimeError(f"the run store at {self.path} failed: {self._error}") from (
            self._error)

    def _backpressure(self) -> None:
        if not self._backpressure_reported:
            self._backpressure_reported = True
            self.add_event(
                self._clock(), "warning", "store_backpressure",
                f"the disk is not keeping up: more than {self._max_pending} rows waiting; "
                "logging now waits for the writer (nothing is dropped)",
                json.dumps({"max_pending": self._max_pending}),
            )
        self._wake.set()
        with self._drained:
            while self._error is None and (
                len(self._scalars) > self._max_pending // 2
                or self._column_values > self._max_pending // 2
            ):
                if not self._thread.is_alive():
                    break
                self._drained.wait(0.05)
        self._raise_error()

    def _key_id(self, name: str) -> int:
        key_id = self._key_ids.get(name)
        if key_id is None:
            cur = self._conn.execute("INSERT INTO keys (name) VALUES (?)", (name,))
            key_id = int(cur.lastrowid or 0)
            self._key_ids[name] = key_id
        return key_id

    def _drain(self) -> None:
        scalars, events, system = self._scalars, self._events, self._system
        n_s, n_e, n_y, n_c = len(scalars), len(events), len(system), len(self._columns)
        if not (n_s or n_e or n_y or n_c):
            return
        cols: dict[str, tuple[array[int], array[float], array[float]]] = {}
        for _ in range(n_c):
            n_values, batch = self._columns.popleft()
            with self._count_lock:
                self._column_values -= n_values
            for key, (c_steps, c_times, c_vals) in batch.items():
                col = cols.get(key)
                if col is None:
                    col = cols[key] = (array("q"), array("d"), array("d"))
                col[0].extend(c_steps)
                col[1].extend(c_times)
                col[2].extend(c_vals)
        pop = scalars.popleft
        for _ in range(n_s):
            step, wall_time, values = pop()
            for key, value in values.items():
                col = cols.get(key)
                if col is None:
                    col = cols[key] = (array("q"), array("d"), array("d"))
                col[0].append(step)
                col[1].append(wall_time)
                col[2].append(value)
        event_rows = [events.popleft() for _ in range(n_e)]
        system_rows: list[tuple[float, str, float]] = []
        samples = [system.popleft() for _ in range(n_y)]
        for wall_time, values in samples:
            system_rows.extend((wall_time, k, v) for k, v in values.items())
        with self._conn:
            for key, (steps, times, vals) in cols.items():
                if not steps:
                    continue
                key_id = self._key_id(key)
                self._conn.execute(
                    "INSERT INTO scalar_chunks (key_id, n, first_step, last_step, steps, times,"
                    " vals) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key_id, len(steps), steps[0], steps[-1], pack(steps), pack(times),
                     pack(vals)),
                )
                if len(steps) < _SMALL_CHUNK:
                    small = self._small_chunks.get(key_id, 0) + 1
                    self._small_chunks[key_id] = small
                    if small >= _MERGE_AFTER:
                        self._merge(key_id)
            if event_rows:
                self._conn.executemany(
                    "INSERT INTO events (time, level, kind, message, data) VALUES (?,?,?,?,?)",
                    event_rows,
                )
            if system_rows:
                self._conn.executemany(
                    "INSERT INTO system (time, name, value) VALUES (?, ?, ?)", system_rows
                )
        with self._drained:
            self._drained.notify_all()
        if self._on_batch is not None:
            self._on_batch(Batch({k: c for k, c in cols.items() if c[0]}, event_rows, samples))

    def _merge(self, key_id: int) -> None:
        """Merge the trailing chunks of one key that are below the small-chunk size."""
        rows = self._conn.execute(
            "SELECT id, n, steps, times, vals FROM scalar_chunks WHERE key_id = ? AND n < ? "
            "AND id > COALESCE((SELECT MAX(id) FROM scalar_chunks WHERE key_id = ? AND n >= ?),"
            " 0) ORDER BY id",
            (key_id, _SMALL_CHUNK * _MERGE_AFTER, key_id, _SMALL_CHUNK * _MERGE_AFTER),
        ).fetchall()
        self._small_chunks[key_id] = 0
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
        self._conn.execute(
            "UPDATE scalar_chunks SET n = ?, first_step = ?, last_step = ?, steps = ?, times = ?,"
            " vals = ? WHERE id = ?",
            (len(steps), steps[0], steps[-1], pack(steps), pack(times), pack(vals), first_id),
        )
        self._conn.executemany(
            "DELETE FROM scalar_chunks WHERE id = ?", [(r[0],) for r in rows[1:]]
        )

    def _merge_all(self) -> None:
        with self._conn:
            for key_id, small in list(self._small_chunks.items()):
                if small >= 2:
                    self._merge(key_id)
