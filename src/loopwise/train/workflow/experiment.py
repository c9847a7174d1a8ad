"""The files of a Workflow experiment folder, besides the run record.

``args.json`` (the trainer's args) and ``history.csv`` (one row per epoch), each written
atomically. The checkpoint files ``last_checkpoint.pth`` (the full training state) and
``last_weights.pt`` (``model.state_dict()`` only) are fixed-name files of the one checkpoint
storage (``checkpoint_named``), with their hashes in the folder's ``manifest.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.csvfile import CsvColumns, number_cell, write_csv
from loopwise.utils.validate import check_json

ARGS_FILE = "args.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "last_checkpoint.pth"
WEIGHTS_FILE = "last_weights.pt"
TIMING_COLUMNS = ("train_seconds", "eval_seconds")


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
    except ValueError as exc:  # not JSON, not UTF-8, an int of over 4300 digits
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


# -- history -------------------------------------------------------------------------------


class History:
    """Rows of ``history.csv`` (epoch, every metric, train and eval seconds), rewritten whole
    and atomically after each epoch; a resumed epoch replaces its row.

    Written with loopwise's one CSV writer (:mod:`loopwise.utils.csvfile`): rows are kept by
    column name, so a metric named like a fixed column (``epoch``, ``train_seconds``...) has
    its own ``<name>_metric`` column and a name a spreadsheet would evaluate gets a ``'``.
    A row passed to :meth:`upsert` holds ``epoch``, the timing columns and the metrics.
    ``writes=False`` keeps the rows without writing (a rank other than 0 under torchrun).
    ``later``: hands each rewrite to a background writer instead of writing it at once (a
    Workflow's save thread: in order with its checkpoints, off the training thread).
    """

    def __init__(self, path: Path, *, writes: bool = True,
                 later: Callable[[Callable[[], None]], None] | None = None) -> None:
        if later is not None and not callable(later):
            raise TypeError(f"later must be a callable or None, got {type(later).__name__}")
        self.path = path
        self.writes = writes
        self.later = later
        self.rows: list[dict[str, float]] = []

    def load(self) -> None:
        if not self.path.is_file():
            self.rows = []
            return
        left = "it was left as it was: repair or remove that line"
        try:
            text = self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                             "it was left as it was: repair it or restore it from a "
                             "backup") from None
        if text and not text.endswith("\n"):  # written whole with a newline: a cut file
            raise ValueError(f"{self.path} ends in a row cut short (no newline at its end); "
                             f"{left}")
        rows = []
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for i, row in enumerate(reader, start=2):
            if None in row or None in row.values():
                raise ValueError(f"{self.path} line {i} does not have the header's "
                                 f"{len(reader.fieldnames or [])} fields (a row cut short?); "
                                 f"{left}")
            try:
                rows.append({k: float(v) for k, v in row.items() if v != ""})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.path} line {i} is not numeric ({exc}); "
                                 f"{left}") from exc
        self.rows = rows

    def upsert(self, row: Mapping[str, float]) -> None:
        epoch = row["epoch"]
        naming = CsvColumns(lead=("epoch",), tail=TIMING_COLUMNS)
        fixed = {"epoch", *TIMING_COLUMNS}
        by_column = {k if k in fixed else naming.column_for(k): v for k, v in row.items()}
        self.rows = [r for r in self.rows if r.get("epoch") != epoch] + [by_column]
        self.rows.sort(key=lambda r: r.get("epoch", math.inf))
        if not self.writes:
            return
        if self.later is None:
            self._write(self.rows)
        else:  # the rows of now (upsert replaces the list, never changes a row)
            rows = self.rows
            self.later(lambda: self._write(rows))

    def columns(self) -> list[str]:
        return _columns(self.rows)

    def _write(self, rows: list[dict[str, float]]) -> None:
        header = _columns(rows)
        write_csv(self.path, header, (
            [(int(row[k]) if k == "epoch" else number_cell(row[k])) if k in row else ""
             for k in header] for row in rows))


def _columns(rows: list[dict[str, float]]) -> list[str]:
    keys: list[str] = ["epoch"]
    for row in rows:
        keys.extend(k for k in row if k not in keys and k not in TIMING_COLUMNS)
    return keys + list(TIMING_COLUMNS)


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
