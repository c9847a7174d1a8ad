"""The run's embedded store: SQLite (WAL) written by one background thread.

Layout and file: :mod:`loopwise.record.storefile`.

Threading: the ``add_*`` methods are called from the training thread and only append to
thread-safe deques (no locks, no I/O). The writer thread drains them in one transaction every
``flush_interval`` seconds (default 0.2 s) and on ``flush()``/``close()``. SQLite runs with
``synchronous=NORMAL`` in WAL mode: a committed batch survives the process being killed; a power
cut may lose the last batch.

Rows it cannot write: a row the store cannot hold (a step beyond int64, a time that is no
number: the run's methods refuse these at the call, so only a caller of the store itself can
hand one over) is left out, the rest of its batch is kept, and a ``store_rows_refused`` event
says what was left out; the writer goes on.

Errors: the first error of the writer (the disk, the database) stops it and is raised to the
calling thread at its next ``add_*``/``flush()`` (once more at ``close()`` only if it was
never raised). A full disk (``ENOSPC``, ``EDQUOT``, ``SQLITE_FULL``) is a
:class:`~loopwise.record.errors.DiskFullError` ("no space left on the device holding ...");
the batches committed before stay readable.

Backpressure: when more than ``max_pending`` items wait, the calling thread blocks until the
writer has caught up (nothing is dropped) and the store records one ``store_backpressure`` event.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopwise.record.errors import DiskFullError, is_disk_full
from loopwise.record.folder import STORE_FILE
from loopwise.record.recorder import ColumnData
from loopwise.record.storefile import (
    MEDIA_SQL,
    MERGE_AFTER,
    SMALL_CHUNK,
    Batch,
    Columns,
    EventRow,
    chunk_sum,
    connect,
    gather_columns,
    insert_rows,
    merge_chunks,
    open_store,
    pack,
    storable_rows,
    unpack,
)
from loopwise.utils.validate import check_int

__all__ = ["STORE_FILE", "Batch", "StoreWriter", "connect", "pack", "unpack"]

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
        check_int(max_pending, what="max_pending", minimum=1)
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
        self._media: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._count_lock = threading.Lock()
        self._column_values = 0  # values waiting in _columns (guarded by _count_lock)
        self._db_lock = threading.Lock()
        self._drained = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._small_chunks: dict[int, int] = {}
        self._backpressure_reported = False
        self._error: BaseException | None = None
        self._error_raised = False
        self._conn, self._key_ids = open_store(path)
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

    def add_media(self, table: str, row: tuple[Any, ...]) -> None:
        """Queue one row of a media table (``histograms``, ``images``, ``texts``; the row as in
        :data:`~loopwise.record.storefile.MEDIA_SQL`), from any thread."""
        if self._error is not None:
            self._raise_error()
        if table not in MEDIA_SQL:
            raise ValueError(f"no media table {table!r}; one of {', '.join(MEDIA_SQL)}")
        self._media.append((table, row))

    def on_own_thread(self) -> bool:
        """Whether the caller is the store's writer thread."""
        return threading.current_thread() is self._thread

    def pending(self) -> int:
        return (len(self._scalars) + len(self._events) + len(self._system) + len(self._columns)
                + len(self._media))

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
        n_m = len(self._media)
        if not (n_s or n_e or n_y or n_c or n_m):
            return
        media = [self._media.popleft() for _ in range(n_m)]
        batches = [self._columns.popleft() for _ in range(n_c)]
        with self._count_lock:
            self._column_values -= sum(n for n, _ in batches)
        pop = scalars.popleft
        refused: list[str] = []
        cols = gather_columns([b for _, b in batches], [pop() for _ in range(n_s)], refused)
        event_rows = [events.popleft() for _ in range(n_e)]
        samples = [system.popleft() for _ in range(n_y)]
        event_rows, samples = storable_rows(event_rows, samples, refused)
        key_ids = dict(self._key_ids)  # a rolled-back batch takes its new keys' ids with it
        try:
            with self._conn:
                self._write(cols, event_rows, samples)
                self._write_media(media)
        except Exception as exc:
            self._key_ids = key_ids
            if is_disk_full(exc):
                raise
            with self._conn:  # one by one: the rows it can write are kept
                event_rows, samples = self._write_each(cols, event_rows, samples, refused, exc)
                media = self._write_media_each(media, refused)
        if refused:
            self._refused(refused)
        with self._drained:
            self._drained.notify_all()
        if self._on_batch is not None:
            self._on_batch(Batch({k: c for k, c in cols.items() if c[0]}, event_rows, samples,
                                 media))

    def _write(self, cols: Columns, event_rows: list[EventRow],
               samples: list[tuple[float, Mapping[str, float]]]) -> None:
        for key, (steps, times, vals) in cols.items():
            if not steps:
                continue
            key_id = self._key_id(key)
            b_steps, b_times, b_vals = pack(steps), pack(times), pack(vals)
            self._conn.execute(
                "INSERT INTO scalar_chunks (key_id, n, first_step, last_step, steps, times,"
                " vals, sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, len(steps), steps[0], steps[-1], b_steps, b_times, b_vals,
                 chunk_sum(key, b_steps, b_times, b_vals)),
            )
            if len(steps) < SMALL_CHUNK:
                small = self._small_chunks.get(key_id, 0) + 1
                self._small_chunks[key_id] = small
                if small >= MERGE_AFTER:
                    self._merge(key_id)
        if event_rows:
            insert_rows(self._conn, "events", event_rows)
        if samples:
            insert_rows(self._conn, "system", [(t, k, v) for t, values in samples
                                               for k, v in values.items()])

    def _write_media(self, media: list[tuple[str, tuple[Any, ...]]]) -> None:
        """The media rows, one checksummed batch per table (``storefile.insert_rows``)."""
        for table in MEDIA_SQL:
            insert_rows(self._conn, table, [row for t, row in media if t == table])

    def _write_media_each(self, media: list[tuple[str, tuple[Any, ...]]], refused: list[str]
                          ) -> list[tuple[str, tuple[Any, ...]]]:
        """The media rows of a failed batch one by one; those written are returned."""
        kept = []
        for table, row in media:
            self._conn.execute("SAVEPOINT piece")
            try:
                insert_rows(self._conn, table, [row])
            except Exception as exc:
                if is_disk_full(exc):
                    raise
                self._conn.execute("ROLLBACK TO piece")
                refused.append(f"{table[:-1]} {row[0]!r} ({exc})")
            else:
                kept.append((table, row))
            self._conn.execute("RELEASE piece")
        return kept

    def _write_each(self, cols: Columns, event_rows: list[EventRow],
                    samples: list[tuple[float, Mapping[str, float]]], refused: list[str],
                    first: BaseException) -> tuple[list[EventRow],
                                                   list[tuple[float, Mapping[str, float]]]]:
        """Write what one failed batch holds piece by piece, leaving out what fails again
        (dropped from ``cols``); the event rows and samples written are returned."""
        kept_events: list[EventRow] = []
        kept_samples: list[tuple[float, Mapping[str, float]]] = []
        pieces: list[tuple[str, Columns, list[EventRow],
                           list[tuple[float, Mapping[str, float]]]]] = []
        pieces += [(f"the values of {k!r}", {k: c}, [], []) for k, c in cols.items()]
        pieces += [(f"event {r[2]!r}", {}, [r], []) for r in event_rows]
        pieces += [("a system sample", {}, [], [y]) for y in samples]
        for what, p_cols, p_events, p_samples in pieces:
            self._conn.execute("SAVEPOINT piece")
            key_ids = dict(self._key_ids)
            try:
                self._write(p_cols, p_events, p_samples)
            except Exception as exc:
                self._key_ids = key_ids
                if is_disk_full(exc):
                    raise
                self._conn.execute("ROLLBACK TO piece")
                refused.append(f"{what} ({exc or first})")
                for key in p_cols:
                    del cols[key]
            else:
                kept_events += p_events
                kept_samples += p_samples
            self._conn.execute("RELEASE piece")
        return kept_events, kept_samples

    def _refused(self, refused: list[str]) -> None:
        shown = "; ".join(refused[:5]) + (f" and {len(refused) - 5} more" if
                                           len(refused) > 5 else "")
        self._events.append((
            self._clock(), "error", "store_rows_refused",
            f"{len(refused)} logged item(s) could not be stored and were left out (the rest "
            f"was kept): {shown}"[:2000],
            json.dumps({"count": len(refused), "refused": refused[:20]}),
        ))

    def _merge(self, key_id: int) -> None:
        self._small_chunks[key_id] = 0
        merge_chunks(self._conn, key_id)

    def _merge_all(self) -> None:
        with self._conn:
            for key_id, small in list(self._small_chunks.items()):
                if small >= 2:
                    self._merge(key_id)
