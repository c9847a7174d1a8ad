"""What the dashboard's JSON API answers, without any web framework: the runs under a root,
one run's facts, a windowed and downsampled series, events and system samples.

Run names from a request never leave the root: a name is one path component (no ``/``, ``\\``,
``..``, NUL, no leading dot), and the folder it names, once symbolic links are resolved, must
be a direct child of the resolved root. Whole series are cached per (run, key) and reloaded
when the store's files change (size or modification time), so zooming into a series of
millions of points re-reads nothing.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loopwise.record.errors import CorruptRecordError
from loopwise.record.folder import CONFIG_FILE, IMAGES_DIR, RUN_FILE, STORE_FILE
from loopwise.record.intact import damage_events, intact
from loopwise.record.media import image_path
from loopwise.record.reader import RunReader
from loopwise.record.safefile import run_file
from loopwise.record.series import Series, downsample
from loopwise.record.stats import metric_mode
from loopwise.record.verify import DamagedRecordError
from loopwise.utils.validate import check_int
from loopwise.view.media_payload import media_payload
from loopwise.view.payload import (
    AXES,
    epoch_axis,
    epoch_ends,
    epoch_to_step,
    finite_list,
    run_payload,
    system_payload,
)
from loopwise.view.runs_table import RunRow, RunTable, is_validation, metric_order, row_keys
from loopwise.view.where import WhereError, parse_where

MAX_POINTS = 20000
FRESH_S = 0.25
VIEWED_FILES = (RUN_FILE, CONFIG_FILE, STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm")
CACHE_SIZE = 32
DOWNLOAD_FORMATS = ("csv", "jsonl")


class NotFound(LookupError):
    """A run or series that is not there (HTTP 404)."""


class BadRequest(ValueError):
    """A request the API refuses (HTTP 400)."""


def _stamp(run_dir: Path) -> tuple[int, ...]:
    out: list[int] = []
    for name in (STORE_FILE, STORE_FILE + "-wal", RUN_FILE):
        try:
            st = (run_dir / name).stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


class RunsRoot:
    """The runs under ``root``, read for the API (thread-safe)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path, got {type(root).__name__}")
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{path} is a file, not a runs folder; pass the folder your "
                                     "runs are in (default ./runs)")
        # a root that does not exist yet is waited for: it has no runs until it appears
        self.root = path.resolve()
        self._table: RunTable | None = None  # made once the root exists
        self._scan_lock = threading.Lock()
        self._scan: tuple[float, list[RunRow]] | None = None
        self._lock = threading.Lock()
        self._verified: dict[str, set[tuple[int, int]]] = {}
        self._json: dict[Path, tuple[RunRow, str, str]] = {}  # a row's encoded answers
        self._cache: OrderedDict[tuple[str, str], tuple[tuple[int, ...], dict[str, Any]]] = (
            OrderedDict())

    # -- paths -------------------------------------------------------------------------------
    def run_dir(self, name: str) -> Path:
        """The folder of run ``name``, refused unless it is a run folder directly in the root."""
        if (not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".")
                or any(c in name for c in ("/", "\\", "\0")) or os.path.isabs(name)):
            raise BadRequest(f"invalid run name {name!r}: a run is named by its folder in the "
                             "runs root")
        try:
            real = Path(os.path.realpath(self.root / name))
            if real.parent != self.root:
                raise BadRequest(f"run {name!r} is outside the runs root")
            if not (real / RUN_FILE).is_file():
                raise NotFound(f"no run {name!r} under the runs root")
            for file in VIEWED_FILES:
                try:
                    run_file(real, file)
                except CorruptRecordError:
                    raise BadRequest(f"run {name!r} links outside its folder ({file})") from None
        except OSError as exc:  # a name the file system refuses (too long, ...)
            raise NotFound(f"no run {name[:80]!r} under the runs root ({exc.strerror})") from None
        return real

    # -- answers -----------------------------------------------------------------------------
    def where(self) -> dict[str, Any]:
        """The runs folder: its path and whether it exists yet."""
        return {"path": str(self.root), "exists": self.root.is_dir()}

    def _rows(self) -> list[RunRow]:
        """Every run's row. Requests that arrive together (the page's ``/api/runs`` and
        ``/api/table``) share one scan: a scan started at most ``FRESH_S`` before a request is
        its answer, so a thousand runs are stamped once, not once per request."""
        asked = time.monotonic()
        with self._scan_lock:
            if self._scan is not None and asked - self._scan[0] <= FRESH_S:
                return self._scan[1]
            started = time.monotonic()
            if not self.root.is_dir():
                return []
            if self._table is None:
                self._table = RunTable(self.root)
            with os.scandir(self.root) as entries:  # a symbolic link only to a run in the root
                dirs = [Path(e.path) for e in entries if not e.is_symlink()
                        or Path(os.path.realpath(e.path)).parent == self.root]
            rows = self._table.rows(dirs=dirs)
            with self._lock:  # forget the JSON of runs that are gone
                for gone in set(self._json) - {r.path for r in rows}:
                    del self._json[gone]
            self._scan = (started, rows)
            return rows

    def _encoded(self, row: RunRow) -> tuple[str, str]:
        """``row`` as ``/api/runs`` and ``/api/table`` write it, kept while the table hands
        back the same row (nothing of the run changed): 10,000 runs are joined, not encoded."""
        with self._lock:
            hit = self._json.get(row.path)
        if hit is not None and hit[0] is row:
            return hit[1], hit[2]
        listed = _dumps({"name": row.name, "status": row.status, "start_time": row.start,
                         "end_time": row.end, "duration": row.duration, "steps": row.steps,
                         "last": dict(row.final), "problem": row.problem,
                         "damaged": row.damaged})
        full = _dumps(row.as_dict())
        with self._lock:
            self._json[row.path] = (row, listed, full)
        return listed, full

    def runs(self) -> list[dict[str, Any]]:
        """``/api/runs``: every run, newest first (:meth:`runs_json` is its answer, encoded)."""
        parsed: list[dict[str, Any]] = json.loads(self.runs_json())
        return parsed

    def runs_json(self) -> Encoded:
        return Encoded("[" + ",".join(self._encoded(r)[0] for r in self._rows()) + "]")

    def table(self, *, where: str | None = None) -> dict[str, Any]:
        """The run table (:mod:`loopwise.view.runs_table`): every run's row, the runs ``where``
        keeps (None: all), the config keys and the metrics with their direction
        (:meth:`table_json` is its answer, encoded)."""
        parsed: dict[str, Any] = json.loads(self.table_json(where=where))
        return parsed

    def table_json(self, *, where: str | None = None) -> Encoded:
        rows = self._rows()
        matched = None
        if where is not None and where.strip():
            try:
                test = parse_where(where, known=row_keys(rows))
            except WhereError as exc:
                raise BadRequest(f"where: {exc}") from None
            matched = [r.name for r in rows if r.status != "corrupt" and test(r.get)]
        metrics = metric_order(k for r in rows for k in r.final)
        rest = _dumps({"matched": matched,
                       "config_keys": list(dict.fromkeys(k for r in rows for k in r.config)),
                       "metrics": [{"key": m, "mode": metric_mode(m),
                                    "validation": is_validation(m)} for m in metrics]})
        return Encoded('{"rows":[' + ",".join(self._encoded(r)[1] for r in rows) + "],"
                       + rest[1:])

    def run(self, name: str) -> dict[str, Any]:
        """A run's facts; ``keys`` leaves out the damaged series, which ``damaged`` names."""
        reader = intact(RunReader(self.run_dir(name)), verified=self._checked(name))
        info = reader.info
        return {"name": name, "status": info["status"],
                "info": {k: info.get(k) for k in ("id", "started_at", "ended_at", "start_time",
                                                  "end_time", "host", "global_step")},
                "config": reader.config(), "keys": reader.keys(),
                "epoch_ends": epoch_ends(reader), "damaged": [str(d) for d in reader.damage]}

    def events(self, name: str) -> list[dict[str, Any]]:
        """The run's events, and one ``record_damaged`` error per damaged part of its store."""
        reader = intact(RunReader(self.run_dir(name)), verified=self._checked(name))
        return [{"time": e.time, "level": e.level, "kind": e.kind, "message": e.message,
                 "data": e.data} for e in reader.events()] + [
            {**e, "data": None} for e in damage_events(reader.damage)]

    def payload(self, name: str, *, points: int = 2000) -> dict[str, Any]:
        """Everything the report of run ``name`` shows (:func:`run_payload`), for its page."""
        return run_payload(RunReader(self.run_dir(name)), max_points=_points(points))

    def download(self, name: str, key: str, *, fmt: str = "csv") -> str:
        """The whole series ``key`` of run ``name`` as CSV (``step,wall_time,value``) or JSON
        lines (``{"step": 1, "wall_time": ..., "value": ...}``, NaN and infinity as null)."""
        if fmt not in DOWNLOAD_FORMATS:
            raise BadRequest(f"format must be one of {', '.join(DOWNLOAD_FORMATS)}; got {fmt!r}")
        series = self._full(name, key)["series"]
        rows = zip(series.steps, series.times, series.values, strict=True)
        if fmt == "csv":
            return "step,wall_time,value\n" + "".join(
                f"{s},{t!r},{v!r}\n" for s, t, v in rows)
        return "".join(json.dumps({"step": s, "wall_time": t,
                                   "value": v if math.isfinite(v) else None}) + "\n"
                       for s, t, v in rows)

    def _checked(self, name: str) -> set[tuple[int, int]]:
        """The chunks of run ``name`` found intact before: a polled run is checked for what is
        new only (each series read for a chart is checked whole anyway)."""
        with self._lock:
            return self._verified.setdefault(name, set())

    def media(self, name: str) -> dict[str, Any]:
        """The run's distribution, image and text views (``view/media_payload.py``); each
        image's ``src`` is its URL under ``/api/runs/{run}/images/``."""
        prefix = f"/api/runs/{quote(name, safe='')}/images/"
        return media_payload(RunReader(self.run_dir(name)), verified=self._checked(name),
                             image_src=lambda entry: f"{prefix}{entry.digest}.png")

    def image(self, name: str, file: str) -> bytes:
        """The PNG ``<digest>.png`` of run ``name`` (only a name its image index holds; a
        file whose bytes fail their SHA-256 is not served: :class:`NotFound` says it)."""
        run_dir = self.run_dir(name)
        digest, _, ext = file.partition(".")
        if ext != "png" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BadRequest(f"invalid image {file!r}: images are named <sha256>.png")
        target = image_path(run_dir, digest)
        if not target.is_file() or Path(os.path.realpath(target)).parent != run_dir / IMAGES_DIR:
            raise NotFound(f"run {name!r} has no image {file!r}")
        try:
            return RunReader(run_dir).image_bytes(digest)
        except KeyError as exc:
            raise NotFound(f"run {name!r} has no image {file!r}") from exc
        except DamagedRecordError as exc:
            raise NotFound(str(exc)) from exc

    def system(self, name: str, *, points: int = 2000) -> dict[str, dict[str, list[Any]]]:
        reader = RunReader(self.run_dir(name))
        try:
            reader.system()
        except DamagedRecordError:  # said by the run's events
            return {}
        return system_payload(reader, max_points=_points(points))

    def _full(self, name: str, key: str) -> dict[str, Any]:
        run_dir = self.run_dir(name)
        stamp = _stamp(run_dir)
        with self._lock:
            hit = self._cache.get((name, key))
            if hit is not None and hit[0] == stamp:
                self._cache.move_to_end((name, key))
                return hit[1]
        import numpy as np

        reader = RunReader(run_dir)
        try:
            series = reader.series(key)
        except KeyError as exc:
            raise NotFound(f"run {name!r} has no series {key!r}") from exc
        steps, times, values = series.to_numpy()
        entry = {"series": series, "steps": steps, "times": times, "values": values,
                 "ends": epoch_ends(reader),
                 "last": float(steps.max()) if len(steps) else None,
                 "sorted": bool(len(steps) < 2 or np.all(steps[1:] >= steps[:-1]))}
        with self._lock:
            self._cache[(name, key)] = (stamp, entry)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return entry

    def series(self, name: str, key: str, *, start: float | None = None,
               end: float | None = None, points: int = 2000, x: str = "step") -> dict[str, Any]:
        """Points of ``key`` whose ``x`` lies in ``[start, end]``, reduced to ``points`` by the
        min/max envelope (spikes survive)."""
        import numpy as np

        points = _points(points)
        if x not in AXES:
            raise BadRequest(f"x must be one of {', '.join(AXES)}; got {x!r}")
        for what, v in (("start", start), ("end", end)):
            if v is not None and not math.isfinite(v):
                raise BadRequest(f"{what} must be a finite number, got {v!r}")
        raw_start, raw_end = start, end
        full = self._full(name, key)
        axis = full["times" if x == "time" else "steps"]
        if x == "epoch" and full["ends"]:  # the epoch axis grows with the step: window on steps
            start = None if start is None else epoch_to_step(start, full["ends"])
            end = None if end is None else epoch_to_step(end, full["ends"])
        elif x == "epoch":
            axis = epoch_axis(axis, [], last=full["last"])
        if start is not None or end is not None:
            if full["sorted"] and x != "time":
                lo = int(np.searchsorted(axis, -np.inf if start is None else start, "left"))
                hi = int(np.searchsorted(axis, np.inf if end is None else end, "right"))
                idx: Any = slice(lo, hi)
            else:
                mask = np.ones(len(axis), dtype=bool)
                if start is not None:
                    mask &= axis >= start
                if end is not None:
                    mask &= axis <= end
                idx = np.flatnonzero(mask)
        else:
            idx = slice(None)
        if isinstance(idx, slice) and idx == slice(None):
            window = full["series"]  # the whole series: no copy
        else:
            steps, times, values = full["steps"][idx], full["times"][idx], full["values"][idx]
            window = Series(key, array("q", steps.tobytes()), array("d", times.tobytes()),
                            array("d", values.tobytes()))
        small = downsample(window, points)
        small_steps = np.frombuffer(small.steps, dtype=np.int64)
        epochs = epoch_axis(small_steps, full["ends"], last=full["last"])
        return {"run": name, "key": key, "x": x, "start": raw_start, "end": raw_end,
                "total": len(full["values"]), "window": len(window),
                "points": len(small), "steps": small_steps.tolist(),
                "times": [round(t, 3) for t in small.times],
                "epochs": [round(float(e), 6) for e in epochs],
                "values": finite_list(small.values)}


def _dumps(body: Any) -> str:
    """JSON as the API answers it (compact; a non-finite number is an error, never NaN)."""
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


class Encoded(str):
    """An answer already encoded as JSON (the app sends it as it is)."""


def _points(points: object) -> int:
    try:
        return check_int(points, what="points", minimum=2, maximum=MAX_POINTS,
                         hint="points drawn per series")
    except ValueError as exc:  # (a wrong type too: ArgumentTypeError)
        raise BadRequest(str(exc)) from None
