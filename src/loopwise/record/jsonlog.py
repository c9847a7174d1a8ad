"""A JSON-lines log of events and epoch metrics in the run folder, with size-based rotation.

One JSON object per line, UTF-8, in ``<run>/log.jsonl`` (``log.jsonl.1`` ... after rotation)::

    {"time": "2026-05-01T12:00:03.120", "ts": 1777636803.12, "level": "info", "type": "event",
     "kind": "resumed", "message": "run resumed", "data": {...}}
    {"time": "...", "ts": ..., "level": "info", "type": "metrics", "step": 120, "epoch": 3,
     "values": {"train_loss": 0.31, "val_loss": null}}

Non-finite numbers are written as ``null`` (:mod:`loopwise.utils.jsonsafe`, the one NaN
convention) so every line is strict JSON; ``time`` is :func:`loopwise.utils.isotime.iso`.
A write that fails (disk full: :class:`~loopwise.record.errors.DiskFullError` naming the file)
raises to the caller, once, instead of printing logging's ``--- Logging error ---`` block; the
lines written before stay readable. Rotation is stdlib
``logging.handlers.RotatingFileHandler`` (``max_bytes``, ``backup_count``); each line is flushed
when written. The logger is private to this object
(not registered with ``logging.getLogger``, does not propagate to the root logger).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time as _time
from collections.abc import Callable, Mapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from loopwise.record.errors import CorruptRecordError, DiskFullError, is_disk_full
from loopwise.record.folder import LOG_FILE
from loopwise.record.safefile import run_file
from loopwise.utils.isotime import iso
from loopwise.utils.jsonsafe import json_safe
from loopwise.utils.validate import check_int, check_key, check_number, check_step

DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_BACKUP_COUNT = 5
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
_PAYLOAD = "loopwise_payload"
_LINE = "loopwise_line"  # the formatted line, kept on the record


class _Handler(RotatingFileHandler):
    """A rotating handler that keeps the error of a failed write for the caller to raise,
    instead of printing logging's ``--- Logging error ---`` block to stderr."""

    error: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        self.error = sys.exc_info()[1]


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, then the record's loopwise payload
    (or ``message`` for a plain logging call)."""

    def format(self, record: logging.LogRecord) -> str:
        # the rotating handler formats each record twice (its size check, then the write):
        # the line is made once and kept on the record
        text: str | None = record.__dict__.get(_LINE)
        if text is not None:
            return text
        payload: dict[str, Any] = dict(getattr(record, _PAYLOAD, None) or
                                       {"type": "log", "message": record.getMessage()})
        ts = float(payload.pop("ts", record.created))
        line = {"time": iso(ts), "ts": round(ts, 6), "level": record.levelname.lower()}
        line.update(payload)
        text = json.dumps(json_safe(line), ensure_ascii=False, default=str, allow_nan=False)
        record.__dict__[_LINE] = text
        return text


class JsonLog:
    """Append events and metrics to a rotating JSON-lines file. Thread-safe; close when done."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 backup_count: int = DEFAULT_BACKUP_COUNT,
                 clock: Callable[[], float] = _time.time) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {type(path).__name__}")
        check_int(max_bytes, what="max_bytes", minimum=1, hint="bytes per file before rotating")
        check_int(backup_count, what="backup_count", minimum=1, hint="rotated files kept")
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"cannot write the JSON log {self.path}: its folder does "
                                    "not exist")
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._clock = clock
        try:
            self._handler = _Handler(self.path, maxBytes=max_bytes, backupCount=backup_count,
                                     encoding="utf-8")
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(self.path) from exc
            raise
        self._handler.setFormatter(JsonFormatter())
        self._logger = logging.Logger(f"loopwise.jsonlog:{self.path}", logging.DEBUG)
        self._logger.propagate = False
        self._logger.addHandler(self._handler)
        self._lock = threading.Lock()
        self._closed = False
        self._failed: OSError | None = None  # the first write error: raised, then refused

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, level: str, payload: dict[str, Any], ts: float | None) -> None:
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {', '.join(_LEVELS)}; got {level!r}")
        payload["ts"] = self._clock() if ts is None else float(ts)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the JSON log {self.path} is closed; nothing more can be "
                                   "written to it")
            if self._failed is not None:  # a fresh error each time: no traceback piling up
                again = (DiskFullError(self.path) if isinstance(self._failed, DiskFullError)
                         else OSError(*self._failed.args))
                raise again from self._failed.__cause__
            # straight to the one handler: Logger.log would also walk the stack (findCaller)
            record = self._logger.makeRecord(self._logger.name, _LEVELS[level], "", 0,
                                             payload.get("message", ""), (), None,
                                             extra={_PAYLOAD: payload})
            self._handler.handle(record)
            error, self._handler.error = self._handler.error, None
            if error is not None:
                self._failed = self._failure(error)
                raise self._failed from error

    def _failure(self, error: BaseException) -> OSError:
        if is_disk_full(error):
            return DiskFullError(self.path)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return OSError(f"cannot write the JSON log {self.path}: {reason}; nothing more is "
                       "written to it (the lines before are kept)")

    def event(self, kind: str, message: str, *, level: str = "info",
              data: Mapping[str, Any] | None = None, time: float | None = None) -> None:
        """Write one event line."""
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
        if not isinstance(message, str):
            raise TypeError(f"event message must be a string, got {type(message).__name__}")
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"event data must be a mapping, got {type(data).__name__}")
        payload: dict[str, Any] = {"type": "event", "kind": kind, "message": message}
        if data is not None:
            payload["data"] = dict(data)
        self._write(level, payload, time)

    def metrics(self, values: Mapping[str, float], *, step: int, epoch: int | None = None,
                time: float | None = None) -> None:
        """Write one metrics line (typically an epoch's train and validation metrics)."""
        check_step(step)
        if epoch is not None:
            check_step(epoch, what="epoch")
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        clean: dict[str, float] = {}
        for key, value in values.items():
            check_key(key)  # the one key rule
            clean[key] = check_number(value, what=f"value of {key!r}")
        payload: dict[str, Any] = {"type": "metrics", "step": step}
        if epoch is not None:
            payload["epoch"] = epoch
        payload["values"] = clean
        self._write("info", payload, time)

    def files(self) -> list[Path]:
        """The log's files, oldest first (``log.jsonl.N`` ... ``log.jsonl``)."""
        rotated = [self.path.with_name(f"{self.path.name}.{i}")
                   for i in range(self.backup_count, 0, -1)]
        return [p for p in [*rotated, self.path] if p.is_file()]

    def close(self) -> None:
        """Flush and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._logger.removeHandler(self._handler)
            try:
                self._handler.close()
            except OSError as exc:  # the last flush on a full disk: what was written stays
                if self._failed is None:
                    raise self._failure(exc) from exc

    def __enter__(self) -> JsonLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_json_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of a JSON log and its rotated files, oldest first. A last line without its
    newline that is not valid JSON (a write cut short by a full disk or a kill) is skipped."""
    base = Path(path)
    rotated = sorted((p for p in base.parent.glob(base.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    out: list[dict[str, Any]] = []
    for file in [*rotated, base]:
        if not file.is_file():
            continue
        with file.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError as exc:
                        if not line.endswith("\n"):  # torn last line: never completed
                            break
                        raise ValueError(f"{file}:{n} is not valid JSON ({exc.msg})") from exc
                    if not isinstance(item, dict):
                        raise ValueError(f"{file}:{n} is not a JSON object")
                    out.append(item)
    return out


def check_jsonlog(run_path: str | os.PathLike[str]) -> list[str]:
    """What is wrong with a run's ``log.jsonl`` (and its rotated files), as sentences naming
    the file and line; empty when every line is a JSON object. No loopwise view reads this
    log (they read ``store.sqlite``): it is there for people and log shippers (``jq``,
    Fluent Bit...), so ``loopwise doctor`` checks it. A torn last line (a kill mid-write) is
    no damage."""
    base = Path(run_path) / LOG_FILE
    problems: list[str] = []
    try:
        read_json_log(run_file(run_path, LOG_FILE))
    except UnicodeDecodeError as exc:
        problems.append(f"{base} (or a rotated file) is not UTF-8 text (byte {exc.start}: "
                        f"{exc.reason}); its events are also in store.sqlite")
    except ValueError as exc:
        problems.append(f"{exc}; the log is for people and log shippers: its events are also "
                        "in store.sqlite")
    except CorruptRecordError as exc:  # a link out of the run folder
        problems.append(str(exc))
    except OSError as exc:
        problems.append(f"{base} cannot be read ({exc.strerror or exc})")
    return problems
