"""The files of a Workflow experiment folder, besides the run record.

``args.json`` (the trainer's args), ``history.csv`` (one row per epoch), ``last_checkpoint.pth``
(the full training state), ``last_weights.pt`` (``model.state_dict()`` only) and
``checkpoint.json`` (size and XXH3-128 hash of the two checkpoint files). Every file is written
and atomically. A checkpoint is staged (written, fsynced, hashed) first, then the manifest
records its hash next to the previous one, then it takes its final name: after a crash at any
point the file on disk matches one of the two recorded hashes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopwise.record.atomic import atomic_write_json
from loopwise.record.csvfile import CsvColumns, number_cell, write_csv
from loopwise.record.validate import check_json
from loopwise.train.checkpoint_store import (
    HASH_ALGORITHM,
    CorruptCheckpointError,
    StoredFile,
    check_file,
    load_file,
    stage_file,
)

ARGS_FILE = "args.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "last_checkpoint.pth"
WEIGHTS_FILE = "last_weights.pt"
MANIFEST_FILE = "checkpoint.json"
TIMING_COLUMNS = ("train_seconds", "eval_seconds")
_log = logging.getLogger(__name__)


# -- args --------------------------------------------------------------------------------------


def normalize_args(args: object) -> dict[str, Any]:
    """``args`` as JSON would give it back (tuples become lists), or a clear error."""
    if not isinstance(args, Mapping):
        raise TypeError(f"trainer.args must be a dict of hyperparameters, got "
                        f"{type(args).__name__}; set self.args = {{...}} in __init__")
    check_json(args, what="trainer.args")
    result: dict[str, Any] = json.loads(json.dumps(dict(args)))
    return result


def read_args(folder: Path) -> dict[str, Any]:
    path = folder / ARGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{folder} exists but has no {ARGS_FILE}, so it is not a Workflow experiment; "
            "choose another name or path"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is corrupt ({exc}); it was left as it was. Repair it (it holds the "
            "experiment's hyperparameters) or move the experiment folder away to start afresh"
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a dict of hyperparameters; "
                         "it was left as it was")
    return data


def write_args(folder: Path, args: Mapping[str, Any]) -> None:
    atomic_write_json(folder / ARGS_FILE, dict(args))


def args_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Readable lines for what differs: ``lr: 0.1 -> 0.01``, ``+ new: 3``, ``- gone: 5``."""
    lines = []
    for key in sorted(set(saved) | set(current), key=str):
        if key not in current:
            lines.append(f"- {key}: {saved[key]!r} (saved, not given now)")
        elif key not in saved:
            lines.append(f"+ {key}: {current[key]!r} (given now, not saved)")
        elif saved[key] != current[key]:
            lines.append(f"{key}: {saved[key]!r} (saved) -> {current[key]!r} (now)")
    return lines


# -- history -------------------------------------------------------------------------------


class History:
    """Rows of ``history.csv`` (epoch, every metric, train and eval seconds), rewritten whole
    and atomically after each epoch; a resumed epoch replaces its row.

    Written with loopwise's one CSV writer (:mod:`loopwise.record.csvfile`): rows are kept by
    column name, so a metric named like a fixed column (``epoch``, ``train_seconds``...) has
    its own ``<name>_metric`` column and a name a spreadsheet would evaluate gets a ``'``.
    A row passed to :meth:`upsert` holds ``epoch``, the timing columns and the metrics.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []

    def load(self) -> None:
        if not self.path.is_file():
            self.rows = []
            return
        rows = []
        with open(self.path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{self.path} line {i} is not numeric ({exc}); it was left "
                                     "as it was: repair or remove that line") from exc
        self.rows = rows

    def upsert(self, row: Mapping[str, float]) -> None:
        epoch = row["epoch"]
        naming = CsvColumns(lead=("epoch",), tail=TIMING_COLUMNS)
        fixed = {"epoch", *TIMING_COLUMNS}
        by_column = {k if k in fixed else naming.column_for(k): v for k, v in row.items()}
        self.rows = [r for r in self.rows if r.get("epoch") != epoch] + [by_column]
        self.rows.sort(key=lambda r: r.get("epoch", math.inf))
        self._write()

    def columns(self) -> list[str]:
        keys: list[str] = ["epoch"]
        for row in self.rows:
            keys.extend(k for k in row if k not in keys and k not in TIMING_COLUMNS)
        return keys + list(TIMING_COLUMNS)

    def _write(self) -> None:
        header = self.columns()
        write_csv(self.path, header, (
            [(int(row[k]) if k == "epoch" else number_cell(row[k])) if k in row else ""
             for k in header] for row in self.rows))


# -- checkpoint files --------------------------------------------------------------------------


class CheckpointFiles:
    """``last_checkpoint.pth`` and ``last_weights.pt`` with their hashes in ``checkpoint.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / CHECKPOINT_FILE

    def exists(self) -> bool:
        return self.checkpoint_path.is_file()

    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.folder / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, dict):
                raise TypeError("'files' is not a dict")
            return files
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            _log.warning("%s is unreadable (%s); checkpoints will be loaded unverified", path, exc)
            return None

    def save(self, state: Mapping[str, Any], weights: Mapping[str, Any], *, epoch: int) -> None:
        """Stage both files, record their hashes (keeping the previous ones), then commit."""
        old = self._read_manifest() or {}
        staged = []
        try:
            staged.append(stage_file(self.folder / CHECKPOINT_FILE, dict(state)))
            staged.append(stage_file(self.folder / WEIGHTS_FILE, dict(weights)))
        except BaseException:
            for item in staged:
                item.discard()
            raise
        files: dict[str, Any] = {}
        now = time.time()
        for item in staged:
            name = item.path.name
            previous = (old.get(name) or {}).get("current")
            files[name] = {"current": {"size": item.stored.size, "hash": item.stored.hash,
                                       "algorithm": item.stored.algorithm, "epoch": epoch,
                                       "time": now},
                           "previous": previous}
        try:
            atomic_write_json(self.folder / MANIFEST_FILE, {"version": 1, "files": files})
        except BaseException:
            for item in staged:
                item.discard()
            raise
        for item in staged:
            item.commit()

    def load(self, *, allow_pickle: bool = False) -> tuple[dict[str, Any], str | None]:
        """The verified checkpoint state, and a warning text when it could not be verified."""
        path = self.checkpoint_path
        manifest = self._read_manifest()
        entry = None if manifest is None else manifest.get(CHECKPOINT_FILE)
        note = None
        if entry is None:
            note = (f"{MANIFEST_FILE} is missing or unreadable; {CHECKPOINT_FILE} was loaded "
                    "without a hash check")
            state = load_file(path, allow_pickle=allow_pickle)
        else:
            problems = []
            for which in ("current", "previous"):
                known = entry.get(which)
                if not known:
                    continue
                expected = StoredFile(size=int(known["size"]), hash=str(known["hash"]),
                                      algorithm=str(known.get("algorithm", HASH_ALGORITHM)))
                problem = check_file(path, expected)
                if problem is None:
                    break
                problems.append(problem)
            else:
                raise CorruptCheckpointError(path, "; ".join(dict.fromkeys(problems)) or
                                             "no hash recorded")
            state = load_file(path, allow_pickle=allow_pickle)
        if not isinstance(state, dict):
            raise CorruptCheckpointError(path, f"it holds a {type(state).__name__}, not a dict")
        return state, note

    def remove_leftovers(self) -> None:
        """Temp files of writes that a crash interrupted (never complete files)."""
        for name in (CHECKPOINT_FILE, WEIGHTS_FILE):
            for leftover in self.folder.glob(f".{name}.*.tmp"):
                leftover.unlink(missing_ok=True)


def check_writable(path: Path) -> None:
    """Create ``path`` if needed and make sure files can be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the experiments folder {path}: "
                      f"{exc.strerror or exc}; pass a path you can write to") from exc
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder; pass a folder for the experiments")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to the experiments folder {path}; "
                              "pass a path you can write to")
