"""Readers of the run record. They never write and never block a writer (SQLite WAL readers)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwise.record.errors import CorruptRecordError, load_json_object
from loopwise.record.folder import CONFIG_FILE, IMAGES_DIR, RUN_FILE, STORE_FILE
from loopwise.record.live import catch_up
from loopwise.record.safefile import run_file
from loopwise.record.series import Series, downsample, epochs_at, one_per_step
from loopwise.record.stats import MetricStats, run_stats
from loopwise.record.status import resolve_status
from loopwise.record.store import connect, unpack
from loopwise.record.verify import (
    IMAGE_HINT,
    ChunkCheck,
    DamagedRecordError,
    check_chunk,
    check_rows,
)
from loopwise.utils.validate import check_key

if TYPE_CHECKING:  # media (numpy) and the CSV export are imported when used: a quick CLI start
    from loopwise.record.media_read import HistogramPoint, ImageEntry, TextEntry


def image_part(entry: ImageEntry) -> str:
    """How a damaged image is named: ``image 'pred' at step 7 (images/<sha256>.png)``."""
    return (f"image {entry.name!r} at step {entry.step} "
            f"({entry.path.parent.name}/{entry.path.name})")

_MOVE_AWAY = "restore it from a backup, or move the run folder out of the runs root"
RUN_FILE_HINT = f"loopwise cannot read this run's status; {_MOVE_AWAY}"
CONFIG_HINT = "it holds the run's parameters: repair it, or delete it to read the run without them"
STORE_HINT = f"the run's series and events cannot be read; {_MOVE_AWAY}"
_HASH_BLOCK = 1 << 20  # an image file is hashed in blocks of this many bytes


@dataclass(frozen=True)
class Event:
    time: float
    level: str
    kind: str
    message: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class RunInfo:
    """A run as listed: its name, folder, resolved status, times and last values. A folder
    whose files cannot be read is listed with status ``corrupt`` and the reason in
    ``problem``."""

    name: str
    path: Path
    status: str
    start_time: float | None
    end_time: float | None
    duration: float | None
    last: dict[str, float] = field(default_factory=dict)
    problem: str | None = None


class RunReader:
    """Read one run folder: its info, config, series, events and system samples.

    A record file that cannot be read (``run.json`` or ``config.json`` not a JSON object, a
    ``store.sqlite`` that is not a database) raises
    :class:`~loopwise.record.errors.CorruptRecordError` naming the file and what to do.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a run folder path, got {type(path).__name__}")
        self.path = Path(path)
        if not (self.path / RUN_FILE).is_file():
            raise FileNotFoundError(
                f"{self.path} is not a loopwise run folder (no {RUN_FILE}); "
                "list the runs with `loopwise runs ROOT`"
            )
        self._checksums: set[str] | None = None
        catch_up(self.path)  # a run still open in this process: what it queued, written now

    # -- files -------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` with ``status`` resolved (``crashed`` when its writer died)."""
        raw = load_json_object(run_file(self.path, RUN_FILE), hint=RUN_FILE_HINT)
        raw["status"] = resolve_status(raw)
        return raw

    @property
    def status(self) -> str:
        return str(self.info["status"])

    def config(self) -> dict[str, Any]:
        file = run_file(self.path, CONFIG_FILE)
        if not file.is_file():
            return {}
        return load_json_object(file, hint=CONFIG_HINT)

    # -- store -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection | None:
        for name in (STORE_FILE + "-wal", STORE_FILE + "-shm"):  # SQLite opens them too
            run_file(self.path, name)
        file = run_file(self.path, STORE_FILE)
        if not file.is_file():
            return None
        return connect(file, readonly=True)

    def _query(self, sql: str, args: tuple[Any, ...] = (), *, old: str | None = None
               ) -> list[tuple[Any, ...]]:
        """The rows of ``sql``; ``old``: the query to run instead on a store whose tables lack
        a column ``sql`` reads (one written before checksums), on the same connection."""
        conn = None
        try:
            conn = self._connect()
            if conn is None:
                return []
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if old is None or "no such column" not in str(exc):
                    raise
                return conn.execute(old, args).fetchall()
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                return []
            raise CorruptRecordError(self.path / STORE_FILE, f"SQLite: {exc}",
                                     hint=STORE_HINT) from exc
        finally:
            if conn is not None:
                conn.close()

    def keys(self) -> list[str]:
        """The scalar keys, in the order they were first logged."""
        return [r[0] for r in self._query("SELECT name FROM keys ORDER BY id")]

    def last_step(self) -> int:
        """The highest step any scalar series holds (0 for none)."""
        rows = self._query("SELECT COALESCE(MAX(last_step), 0) FROM scalar_chunks")
        return int(rows[0][0]) if rows else 0  # no rows: a store with no tables yet

    def _has(self, what: str) -> bool:
        """Whether the store has the checksum column (``sum``) or table (``row_sums``): a store
        written before checksums has neither and reads unverified."""
        if self._checksums is None:
            cols = {r[1] for r in self._query("PRAGMA table_info(scalar_chunks)")}
            tables = {r[0] for r in self._query("SELECT name FROM sqlite_master")}
            self._checksums = {"sum"} & cols | {"row_sums"} & tables
        return what in self._checksums

    def _columns(self, key: str, *, verify: bool = True
                 ) -> tuple[array[int], array[float], array[float]]:
        """The columns of ``key``, one point per step, their checksums checked."""
        steps, times, values, check = self._read(key, verify=verify)
        check.wait()
        return steps, times, values

    def _read(self, key: str, *, verify: bool
              ) -> tuple[array[int], array[float], array[float], ChunkCheck]:
        """The columns of ``key`` and their checksum check, still running on a long series
        (``wait()`` for it before anything read is handed out)."""
        sums = "c.sum" if verify and self._has("sum") else "NULL"
        rows = self._query(
            f"SELECT c.steps, c.times, c.vals, {sums} FROM scalar_chunks c JOIN keys k ON "
            "k.id = c.key_id WHERE k.name = ? ORDER BY c.id", (key,))
        if not rows and key not in self.keys():
            known = ", ".join(self.keys()) or "none yet"
            raise KeyError(f"run {self.path.name!r} has no series {key!r}; known keys: {known}")
        check = ChunkCheck(self.path / STORE_FILE, key, rows)
        steps, times, values = array("q"), array("d"), array("d")
        for s, t, v, _ in rows:  # one copy per blob, no joined intermediate
            unpack("q", s, steps)
            unpack("d", t, times)
            unpack("d", v, values)
        return (*one_per_step(steps, times, values), check)

    def series(self, key: str, *, max_points: int | None = None) -> Series:
        """The whole series of ``key`` (downsampled with :func:`downsample` when asked), one
        point per step: a step logged again (a run resumed from a checkpoint older than its
        last logged step) keeps its later value. A series whose bytes fail their checksum is
        :class:`~loopwise.record.verify.DamagedRecordError` (the other series still read)."""
        check_key(key, what="key")
        steps, times, values, check = self._read(key, verify=True)
        try:
            ends = None
            if key == "epoch":
                ends = Series(key, steps, times, values)
            elif "epoch" in self.keys():
                ends = self.series("epoch")
            out = Series(key, steps, times, values, epochs_at(steps, ends))
        finally:
            check.wait()  # nothing read leaves before its checksums held
        return out if max_points is None else downsample(out, max_points)

    def all_values(self, *, damage: list[DamagedRecordError] | None = None
                   ) -> dict[str, array[float]]:
        """Every series' values (no steps, no times), keys in the order their first chunk was
        written: one read of the store, for a table of final and best values. A series with a
        chunk that fails its checksum is left out (its values are not what was logged) and,
        when ``damage`` is a list, a :class:`~loopwise.record.verify.DamagedRecordError`
        naming it is appended to it."""
        out: dict[str, array[float]] = {}
        bad: set[str] = set()
        rows = self._query(  # one connection: a thousand runs are read for one table
            "SELECT k.name, c.steps, c.times, c.vals, c.sum FROM scalar_chunks c JOIN keys k "
            "ON k.id = c.key_id ORDER BY c.id",
            old="SELECT k.name, x'', x'', c.vals, NULL FROM scalar_chunks c JOIN keys k ON "
                "k.id = c.key_id ORDER BY c.id")  # written before checksums: unverified
        store = self.path / STORE_FILE
        for name, s, t, blob, expected in rows:
            if name in bad:
                continue
            try:
                check_chunk(store, name, s, t, blob, expected)
            except DamagedRecordError as exc:
                bad.add(name)
                out.pop(name, None)
                if damage is not None:
                    damage.append(exc)
                continue
            unpack("d", blob, out.setdefault(name, array("d")))
        return out

    def last_values(self) -> dict[str, float]:
        """Each key's last logged value (a key whose last chunk fails its checksum is left
        out: :meth:`series` names it)."""
        sums = "c.sum" if self._has("sum") else "NULL"
        rows = self._query(
            f"SELECT k.name, c.steps, c.times, c.vals, {sums} FROM keys k JOIN scalar_chunks c "
            "ON c.id = (SELECT MAX(id) FROM scalar_chunks WHERE key_id = k.id) ORDER BY k.id")
        out = {}
        for name, s, t, v, expected in rows:
            try:
                check_chunk(self.path / STORE_FILE, name, s, t, v, expected)
            except DamagedRecordError:
                continue
            out[name] = unpack("d", v)[-1]
        return out

    def damaged_parts(self, *, verified: set[tuple[int, int]] | None = None
                      ) -> list[DamagedRecordError]:
        """Every damaged part of the record (each series whose chunks fail their checksum, the
        events, the system samples, each image file whose bytes fail their SHA-256: see
        :meth:`damaged_images`), checked without unpacking. ``verified`` holds ``(chunk id,
        checksum)`` pairs found intact before (and marks of image files): they are skipped and
        the newly checked ones added, so a viewer that polls a growing run checks only what is
        new."""
        known: set[tuple[int, int]] = set() if verified is None else verified
        out: list[DamagedRecordError] = []
        if self._has("sum"):
            bad: set[str] = set()
            for name, chunk_id, expected in self._query(
                    "SELECT k.name, c.id, c.sum FROM scalar_chunks c JOIN keys k ON k.id = "
                    "c.key_id WHERE c.sum IS NOT NULL ORDER BY c.id"):
                if (chunk_id, expected) in known or name in bad:
                    continue
                row = self._query("SELECT steps, times, vals, sum FROM scalar_chunks WHERE id = "
                                  "?", (chunk_id,))  # its sum read with it: a merge meanwhile
                if not row:  # merged away meanwhile: its points are in the first chunk
                    continue
                try:
                    check_chunk(self.path / STORE_FILE, name, *row[0])
                except DamagedRecordError as exc:
                    out.append(exc)
                    bad.add(name)
                    continue
                known.add((chunk_id, row[0][3]))
        for read in (self.events, self.system):
            try:
                read()
            except DamagedRecordError as exc:
                out.append(exc)
        return out + self.damaged_images(verified=known)

    def events(self, *, kind: str | None = None, level: str | None = None) -> list[Event]:
        """The events in the order logged, optionally of one ``kind`` and ``level``
        (:class:`~loopwise.record.verify.DamagedRecordError` when their checksum fails)."""
        rows = self._query("SELECT id, time, level, kind, message, data FROM events ORDER BY id")
        self._check_rows("events", rows)
        rows = [r for r in rows if (kind is None or r[3] == kind)
                and (level is None or r[2] == level)]
        try:
            return [Event(t, lv, k, m, json.loads(d) if d else None)
                    for _, t, lv, k, m, d in rows]
        except json.JSONDecodeError as exc:
            raise CorruptRecordError(self.path / STORE_FILE, f"an event's data is not JSON: "
                                     f"{exc.msg}", hint=STORE_HINT) from exc

    def system(self, name: str | None = None) -> list[tuple[float, str, float]]:
        """System samples as ``(time, name, value)``, optionally of one name; a value logged as
        NaN (stored as NULL) reads as NaN."""
        rows = [(i, float(t), str(n), math.nan if v is None else float(v)) for i, t, n, v in
                self._query("SELECT rowid, time, name, value FROM system ORDER BY rowid")]
        self._check_rows("system", rows)
        return [(t, n, v) for _, t, n, v in rows if name is None or n == name]

    def _check_rows(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows and self._has("row_sums"):
            sums = self._query("SELECT first, last, sum FROM row_sums WHERE tbl = ? ORDER BY "
                               "first", (table,))
            part = "system samples" if table == "system" else table
            check_rows(self.path / STORE_FILE, part, rows, sums)

    # -- beyond scalars (docs/record.md) ---------------------------------------------------------
    def histogram_names(self) -> list[str]:
        """The names of the run's histograms, in the order they were first logged."""
        return self._media_names("histograms")

    def image_names(self) -> list[str]:
        return self._media_names("images")

    def text_names(self) -> list[str]:
        return self._media_names("texts")

    def histograms(self, name: str) -> list[HistogramPoint]:
        """Every histogram logged as ``name``, by step (``HistogramPoint.histogram`` has the
        bins, ``edges()`` and ``quantiles(qs)``)."""
        from loopwise.record.media_read import media_points

        return media_points("histograms", self._media_rows("histograms", name), self.path)

    def images(self, name: str) -> list[ImageEntry]:
        """Every image logged as ``name``, by step (``ImageEntry.path``: its PNG file; read its
        bytes with :meth:`image_bytes`, which checks them against their SHA-256)."""
        from loopwise.record.media_read import media_points

        return media_points("images", self._media_rows("images", name), self.path, name)

    def texts(self, name: str) -> list[TextEntry]:
        from loopwise.record.media_read import media_points

        return media_points("texts", self._media_rows("texts", name), self.path)

    def image_bytes(self, image: ImageEntry | str) -> bytes:
        """The PNG bytes of an image (an :class:`ImageEntry` of :meth:`images`, or its digest),
        checked against the SHA-256 they were stored under: a file whose bytes changed since
        is :class:`~loopwise.record.verify.DamagedRecordError` naming the image (the run's
        other images still read). A digest no image of the run has is :class:`KeyError`."""
        if not isinstance(image, str) and not all(
                hasattr(image, a) for a in ("digest", "name", "step")):
            raise TypeError(f"image_bytes() takes an ImageEntry of images() or its digest "
                            f"(a str), got {type(image).__name__}")
        if isinstance(image, str):
            rows = self._query("SELECT name, step FROM images WHERE digest = ? ORDER BY id "
                               "LIMIT 1", (image,))
            if not rows:
                raise KeyError(f"run {self.path.name!r} has no image {image!r}")
            digest, name, step = image, str(rows[0][0]), int(rows[0][1])
        else:
            digest, name, step = image.digest, image.name, image.step
        file = self.path / IMAGES_DIR / f"{digest}.png"
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise self._image_damage(file, name, step, 1)
        return data

    def damaged_images(self, *, verified: set[tuple[int, int]] | None = None
                       ) -> list[DamagedRecordError]:
        """Each image file of the run whose bytes fail the SHA-256 it was stored under (one
        :class:`~loopwise.record.verify.DamagedRecordError` per file, naming the first image
        logged with it; a file missing is not checked: the views list it as omitted).
        ``verified``: as in :meth:`damaged_parts`; a file found intact before is hashed again
        only once its size or modification time changed."""
        known: set[tuple[int, int]] = set() if verified is None else verified
        # the columns of media_read.COLUMNS["images"] (each row's batch checksum covers them)
        rows = self._query("SELECT id, name, step, time, digest, width, height, bytes FROM "
                           "images ORDER BY id")
        try:
            self._check_rows("images", rows)
        except DamagedRecordError as exc:  # the index itself: its digests are not to be trusted
            return [exc]
        logged: dict[str, tuple[int, str, int, int]] = {}  # digest: (row, name, step, count)
        for row, name, step, _, digest, *_ in rows:
            first = logged.get(str(digest))
            logged[str(digest)] = ((int(row), str(name), int(step), 1) if first is None else
                                   (*first[:3], first[3] + 1))
        out = []
        for digest, (row, name, step, count) in logged.items():
            file = self.path / IMAGES_DIR / f"{digest}.png"
            try:
                stat = file.stat()
            except OSError:
                continue
            mark = (-row, hash((digest, stat.st_size, stat.st_mtime_ns, stat.st_ino)))
            if mark in known:  # negative: never a chunk id
                continue
            sha = hashlib.sha256()
            try:
                with file.open("rb") as fh:
                    while block := fh.read(_HASH_BLOCK):
                        sha.update(block)
            except OSError:
                continue
            if sha.hexdigest() != digest:
                out.append(self._image_damage(file, name, step, count))
            else:
                known.add(mark)
        return out

    def _image_damage(self, file: Path, name: str, step: int, count: int
                      ) -> DamagedRecordError:
        more = "" if count == 1 else f" (and {count - 1} more logged with its content)"
        return DamagedRecordError(file, f"image {name!r} at step {step}{more}",
                                  run=self.path.name, hint=IMAGE_HINT)

    def images_used(self) -> tuple[int, int, set[str]]:
        """How many images the record holds, the bytes of their files and their digests (the
        image budget a resumed run goes on from)."""
        count = self._query("SELECT COUNT(*) FROM images")
        sizes = dict(self._query("SELECT digest, MAX(bytes) FROM images GROUP BY digest"))
        return (int(count[0][0]) if count else 0, sum(int(v) for v in sizes.values()),
                set(sizes))

    def _media_names(self, table: str) -> list[str]:
        rows = self._query(f"SELECT name, MIN(id) AS first FROM {table} GROUP BY name "
                           "ORDER BY first")
        return [str(r[0]) for r in rows]

    def _media_rows(self, table: str, name: object) -> list[tuple[Any, ...]]:
        """``(step, time, ...)`` rows of ``name`` in ``table``, by step (then as logged);
        :class:`~loopwise.record.verify.DamagedRecordError` when a checksum fails."""
        from loopwise.record.media_read import COLUMNS, KINDS

        if not isinstance(name, str):
            raise TypeError(f"{KINDS[table]} name must be a string, got {type(name).__name__}")
        # the whole table, its batch checksums checked (a batch holds rows of several names)
        every = self._query(f"SELECT id, {COLUMNS[table]} FROM {table} ORDER BY id")
        self._check_rows(table, every)
        rows = sorted((r[2:] for r in every if r[1] == name), key=lambda r: r[0])  # by step
        if not rows:
            known = ", ".join(self._media_names(table)) or "none"
            raise KeyError(f"run {self.path.name!r} has no {KINDS[table]} {name!r}; its "
                           f"{table}: {known}")
        return rows

    def stats(self, *, keys: list[str] | None = None) -> dict[str, MetricStats]:
        """Per-metric statistics (min, max, mean, last, best and its step, recent slope);
        ``render_stats`` in :mod:`loopwise.record.stats` prints them as a table."""
        return run_stats(self, keys=keys)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per step with a column per key (see :mod:`loopwise.record.export`)."""
        from loopwise.record.export import run_to_csv

        return run_to_csv(self, path)

    def summary(self) -> RunInfo:
        info = self.info
        start, end = info.get("start_time"), info.get("end_time")
        ref = end if end is not None else info.get("heartbeat")
        duration = (ref - start) if isinstance(start, (int, float)) and isinstance(
            ref, (int, float)) else None
        if not isinstance(start, (int, float)):
            start = None
        if not isinstance(end, (int, float)):
            end = None
        return RunInfo(name=str(info.get("name", self.path.name)), path=self.path,
                       status=str(info["status"]), start_time=start, end_time=end,
                       duration=duration, last=self.last_values())


def iter_run_dirs(root: str | os.PathLike[str]) -> Iterator[Path]:
    base = Path(root)
    if not base.is_dir():
        return
    for child in base.iterdir():
        if (child / RUN_FILE).is_file():
            yield child


def list_runs(root: str | os.PathLike[str] = "runs") -> list[RunInfo]:
    """The runs under ``root``, newest first, with status, duration and last values. A folder
    that cannot be read is listed as ``corrupt`` (``RunInfo.problem`` says why): one bad
    folder never hides the others."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"no runs folder at {root}; runs are created under ./runs by "
                                "default, or pass the root you used")
    out = []
    for run_dir in iter_run_dirs(root):
        try:
            out.append(RunReader(run_dir).summary())
        except (CorruptRecordError, OSError) as exc:  # one bad folder never hides the others
            out.append(RunInfo(run_dir.name, run_dir, "corrupt", None, None, None,
                               problem=str(exc)))
    return sorted(out, key=lambda r: (r.start_time or 0.0, r.name), reverse=True)
