"""The run table: one row per run with its status, start, duration and steps, its flattened
config (``optimizer.lr``) and each metric's final and best value. ``loopwise runs``,
``loopwise compare`` and the dashboard's run table all read it from here.

Best values: a metric has a best only when its name states a direction
(:func:`loopwise.record.stats.metric_mode`, the rule behind ``mode="auto"`` of
:class:`loopwise.watch.improvement.Improvement`): a loss, error or time is minimised, an
accuracy, F1, AUC or score maximised. ``lr``, ``momentum``, ``grad_norm`` and other quantities
that are watched rather than optimised get a final value and no best. The final value is the
last finite one. Validation metrics (``val_*``, ``valid*``, ``eval*``, ``test*``, also under
``epoch/``) come first, then the others in the order they were first logged.

Keys, as ``--where``, ``--sort`` and ``--columns`` take them: ``name``, ``status``, ``start``,
``end``, ``duration``, ``steps``; ``config.KEY`` and ``final.KEY`` / ``best.KEY``; a bare
``KEY`` is the config value when the run's config has it, else the metric's final value.

:class:`RunTable` keeps each run's row until one of its files changes (size or modification
time), so a dashboard re-reading 1,000 runs every second stats four files per run and reads
only the runs that moved; the row itself is kept too (the same object) while nothing changed
and the run is not running, so a view can keep what it derived from it (its JSON).
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopwise.record.errors import CorruptRecordError, load_json_object
from loopwise.record.folder import CONFIG_FILE, RUN_FILE, STORE_FILE
from loopwise.record.reader import CONFIG_HINT, RUN_FILE_HINT, RunReader
from loopwise.record.stats import metric_mode
from loopwise.record.status import resolve_status
from loopwise.record.verify import DamagedRecordError
from loopwise.utils.validate import check_int
from loopwise.view.where import MISSING

ATTRIBUTES = ("name", "status", "start", "end", "duration", "steps")
_VALIDATION = re.compile(r"^(epoch/)?(val|valid|validation|eval|test)([_/.\-]|$)",
                         re.IGNORECASE)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as ``{"a.b": value}`` (an empty mapping stays a value)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def is_validation(key: str) -> bool:
    """True for a validation metric's name (``val_loss``, ``epoch/val_acc``, ``eval/f1``)."""
    return bool(_VALIDATION.match(key))


def metric_order(keys: Iterable[str]) -> list[str]:
    """``keys`` without ``epoch``, validation metrics first, each group in its given order."""
    keys = [k for k in dict.fromkeys(keys) if k != "epoch"]
    return [k for k in keys if is_validation(k)] + [k for k in keys if not is_validation(k)]


def final_and_best(key: str, values: Sequence[float]) -> tuple[float | None, float | None]:
    """The last finite value of ``values`` and, when ``key`` states a direction
    (:func:`~loopwise.record.stats.metric_mode`), the best finite one in that direction."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if not len(finite):
        return None, None
    mode = metric_mode(key)
    best = None if mode is None else float(finite.min() if mode == "min" else finite.max())
    return float(finite[-1]), best


@dataclass(frozen=True)
class RunRow:
    """One run of the table. ``problem``: which of its files could not be read and why. Status
    ``corrupt`` when the run itself cannot be read (``run.json``, ``store.sqlite``); a damaged
    ``config.json`` keeps the run's real status and its metrics, with no config. ``damaged``:
    each series of its store that fails its checksum (said as
    :class:`~loopwise.record.verify.DamagedRecordError` says it); those series are left out
    of ``final`` and ``best``, the others are there."""

    name: str
    path: Path
    status: str
    start: float | None
    end: float | None
    duration: float | None
    steps: int
    config: dict[str, Any] = field(default_factory=dict)
    final: dict[str, float | None] = field(default_factory=dict)
    best: dict[str, float | None] = field(default_factory=dict)
    problem: str | None = None
    damaged: list[str] = field(default_factory=list)

    def get(self, key: str) -> Any:
        """The value of ``key`` (module docstring), or :data:`~loopwise.view.where.MISSING`."""
        if key in ATTRIBUTES:
            return getattr(self, key)
        if key in self.config:
            return self.config[key]
        for prefix, values in (("config.", self.config), ("final.", self.final),
                               ("best.", self.best)):
            if key.startswith(prefix) and key[len(prefix):] in values:
                return values[key[len(prefix):]]
        if key in self.final:
            return self.final[key]
        return MISSING

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON (non-finite numbers as null)."""
        return {"name": self.name, "status": self.status, "start": self.start,
                "end": self.end, "duration": self.duration, "steps": self.steps,
                "config": {k: _json_safe(v) for k, v in self.config.items()},
                "final": dict(self.final), "best": dict(self.best), "problem": self.problem,
                "damaged": list(self.damaged)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def row_keys(rows: Sequence[RunRow]) -> list[str]:
    """Every key the rows answer to: attributes, config keys (bare and ``config.``), metrics
    (bare, ``final.`` and ``best.``)."""
    config = list(dict.fromkeys(k for r in rows for k in r.config))
    metrics = metric_order(k for r in rows for k in r.final)
    bests = [k for k in metrics if any(k in r.best for r in rows)]
    return list(dict.fromkeys([*ATTRIBUTES, *config, *(f"config.{k}" for k in config),
                               *metrics, *(f"final.{k}" for k in metrics),
                               *(f"best.{k}" for k in bests)]))


def sort_rows(rows: Sequence[RunRow], key: str, *, descending: bool = False) -> list[RunRow]:
    """``rows`` ordered by ``key``; runs without a value (or with text among numbers) last."""
    def order(row: RunRow) -> tuple[int, Any]:
        v = row.get(key)
        if v is MISSING or v is None or (isinstance(v, float) and math.isnan(v)):
            return (2, 0)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (0, -v if descending else v)
        return (1, str(v))

    present = [r for r in rows if order(r)[0] < 2]
    numbers = sorted((r for r in present if order(r)[0] == 0), key=order)
    texts = sorted((r for r in present if order(r)[0] == 1), key=order, reverse=descending)
    return [*numbers, *texts, *(r for r in rows if order(r)[0] == 2)]


# -- reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Loaded:
    info: dict[str, Any]
    config: dict[str, Any]
    final: dict[str, float | None]
    best: dict[str, float | None]
    steps: int
    damaged: list[str]
    problem: str | None = None


_WAL = STORE_FILE + "-wal"
_STAMPED = (RUN_FILE, CONFIG_FILE, STORE_FILE, _WAL)


def _stamp(run_dir: Path | str) -> tuple[int, ...]:
    """Modification times and sizes of the run's files (plain ``os.stat`` on strings: a
    thousand runs are stamped on every poll of the dashboard)."""
    base = os.fspath(run_dir) + os.sep
    out: list[int] = []
    for name in _STAMPED:
        try:
            st = os.stat(base + name)
        except (FileNotFoundError, NotADirectoryError):
            out += [0, 0]
            continue
        # an empty -wal reads as none: SQLite makes one when a reader opens the store
        empty = st.st_size == 0 and name == _WAL
        out += [0, 0] if empty else [st.st_mtime_ns, st.st_size]
    return tuple(out)


def _read_store(run_dir: Path
                ) -> tuple[dict[str, float | None], dict[str, float | None], int, list[str]]:
    reader = RunReader(run_dir)
    damage: list[DamagedRecordError] = []
    values = reader.all_values(damage=damage)  # a damaged series is left out, and named
    final: dict[str, float | None] = {}
    best: dict[str, float | None] = {}
    for name in metric_order(values):
        last, top = final_and_best(name, values[name])
        final[name] = last
        if metric_mode(name) is not None:
            best[name] = top
    return final, best, reader.last_step() if values else 0, [str(d) for d in damage]


def _load(run_dir: Path) -> _Loaded:
    info = load_json_object(run_dir / RUN_FILE, hint=RUN_FILE_HINT)
    config_file = run_dir / CONFIG_FILE
    config: dict[str, Any] = {}
    problem = None
    try:
        if config_file.is_file():
            config = load_json_object(config_file, hint=CONFIG_HINT)
    except CorruptRecordError as exc:  # the run still ran: its status and metrics stand
        problem = str(exc)
    final, best, steps, damaged = _read_store(run_dir)
    step = info.get("global_step")
    if isinstance(step, int) and not isinstance(step, bool):
        steps = max(steps, step)
    return _Loaded(info, flatten(config), final, best, steps, damaged, problem)


def _row(run_dir: Path, loaded: _Loaded) -> RunRow:
    info = loaded.info
    start, end = info.get("start_time"), info.get("end_time")
    start = start if isinstance(start, (int, float)) else None
    end = end if isinstance(end, (int, float)) else None
    ref = end if end is not None else info.get("heartbeat")
    duration = ref - start if start is not None and isinstance(ref, (int, float)) else None
    return RunRow(run_dir.name, run_dir, resolve_status(info), start, end, duration,
                  loaded.steps, loaded.config, loaded.final, loaded.best,
                  problem=loaded.problem, damaged=loaded.damaged)


class RunTable:
    """The rows of the runs under ``root``, newest first, each re-read only when its files
    change (thread-safe)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path, got {type(root).__name__}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no runs folder at {self.root}; runs are created under "
                                    "./runs by default, or pass the root you used")
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, ...], _Loaded, RunRow]] = {}

    def row(self, run_dir: Path, *, stamp: tuple[int, ...] | None = None) -> RunRow:
        """The row of one run folder (status ``corrupt`` when it cannot be read); ``stamp``:
        its files' stamp when the caller took it already."""
        stamp = _stamp(run_dir) if stamp is None else stamp
        with self._lock:
            hit = self._cache.get(run_dir)
        if hit is not None and hit[0] == stamp:
            if hit[2].status != "running":  # nothing changed: the same row
                return hit[2]
            loaded = hit[1]  # a running run's status is asked again (its writer may be gone)
        else:
            try:
                loaded = _load(run_dir)
            except (CorruptRecordError, OSError) as exc:  # one bad folder hides no other
                return RunRow(run_dir.name, run_dir, "corrupt", None, None, None, 0,
                              problem=str(exc))
        row = _row(run_dir, loaded)
        with self._lock:
            self._cache[run_dir] = (stamp, loaded, row)
        return row

    def rows(self, *, dirs: Iterable[Path] | None = None) -> list[RunRow]:
        """Every run (or those in ``dirs``; a folder without ``run.json`` is none), newest
        first."""
        run_dirs = list(self.root.iterdir() if dirs is None else dirs)
        out = []
        for run_dir in run_dirs:
            stamp = _stamp(run_dir)
            if stamp[0]:  # run.json is there: a run
                out.append(self.row(run_dir, stamp=stamp))
        if dirs is None:
            with self._lock:  # forget runs that are gone
                for gone in set(self._cache) - {r.path for r in out}:
                    del self._cache[gone]
        return sorted(out, key=lambda r: (r.start or 0.0, r.name), reverse=True)


def query_rows(root: str | os.PathLike[str], *, where: str | None = None,
               sort: str | None = None, descending: bool = False, limit: int | None = None,
               table: RunTable | None = None) -> tuple[list[RunRow], list[RunRow]]:
    """The runs under ``root`` that ``where`` keeps, ordered by ``sort`` (newest first without
    it), at most ``limit``; and every run (for the columns). A bad expression or key is a
    ValueError naming it."""
    from loopwise.view.where import close_keys, parse_where

    if limit is not None:  # (a command-line option: the message does not offer None)
        check_int(limit, what="--limit", minimum=1, hint="rows shown")
    everything = (table or RunTable(root)).rows()
    rows = everything
    known = row_keys(everything)
    if where is not None:
        test = parse_where(where, known=known)
        rows = [r for r in rows if r.status != "corrupt" and test(r.get)]
    if sort is not None:
        if sort not in known:
            near = close_keys(sort, known)
            hint = (f"did you mean {', '.join(near)}?" if near
                    else f"known: {', '.join(known)}")
            raise ValueError(f"--sort: unknown key {sort!r}; {hint}")
        rows = sort_rows(rows, sort, descending=descending)
    return (rows[:limit] if limit is not None else rows), everything
