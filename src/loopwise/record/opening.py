"""The one way a run is opened or resumed, the one "this run is finished" marker, and the one
end of a run. Every entry point goes through here: TrainingMonitor and TrainingSession
(``watch/``, through :mod:`loopwise.record.active`), ``fit`` (``train/fit/runplan.py``),
``Workflow`` (``train/workflow/opening.py``) and the Keras callback.

``open_run(root, name, config=..., decide=..., force=...)`` looks at ``<root>/<name>/``:

- ``name`` None, no such folder, or an unborn run (a folder a kill left before its
  ``run.json``: :func:`~loopwise.record.names.is_unborn`): a **new** run (:meth:`Run.create`);
- a folder that is not a loopwise run folder (no ``run.json``): ``FileExistsError``, the folder
  left as it is (``force`` never deletes it either);
- ``force``: the old run folder is deleted and a new run starts;
- otherwise ``decide(folder, info)`` (``info``: its ``run.json``, read and checked) says what to
  do: ``"resume"`` (:meth:`Run.reopen`: status back to ``running``, the global step continued)
  or ``"finished"`` (nothing is opened: the caller returns what the run did); it raises to
  refuse (other parameters...), before anything is written. With no ``decide`` an existing run
  is never written into: ``FileExistsError`` (Run.create's "already exists").

The finished marker (:func:`run_finished`) is ``run.json``'s status as a reader resolves it
(``finished``, written by :meth:`Run.close` only when the run ended without an error). A
Workflow asks in addition whether the epochs it is given are done (``run.json``'s
``workflow`` block): that is how much was trained, not whether the run ended.

:func:`end_run` is the one end of a run: the status from how the block ended
(:func:`~loopwise.record.status.exit_status`), the run closed with it (its exporters drained and
closed, the final ``run.json`` written) and then the ``after`` steps (``fit`` and ``Workflow``
write ``report.html`` there, whether the run finished or failed), whose errors are logged,
never raised over the run's own.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from loopwise.record.errors import load_json_object
from loopwise.record.folder import RUN_FILE, is_run_folder
from loopwise.record.names import is_unborn, validate_run_name
from loopwise.record.recorder import TrainingRun
from loopwise.record.run import Run
from loopwise.record.status import exit_status, resolve_status

__all__ = ["ACTIONS", "OpenedRun", "end_run", "exists_error", "open_run", "read_run_info",
           "reopen_run", "run_finished"]

ACTIONS = ("new", "resume", "finished")
Decide = Callable[[Path, dict[str, Any]], str]


@dataclass
class OpenedRun:
    """What :func:`open_run` did: ``action`` (``new``, ``resume`` or ``finished``), the run
    folder, its ``run.json`` as it was before (empty for a new run) and the run (None when
    finished)."""

    action: str
    path: Path
    run: Run | None
    info: dict[str, Any]


def open_run(root: str | os.PathLike[str], name: str | None, *,
             config: Mapping[str, Any] | None = None, decide: Decide | None = None,
             force: bool = False) -> OpenedRun:
    """Open, resume or leave the run ``root/name``; see the module docstring."""
    if name is not None:
        validate_run_name(name)
    folder = None if name is None else Path(root) / name
    if folder is None or not folder.exists() or is_unborn(folder):  # unborn: see names.py
        run = Run.create(root, name, config=config)
        return OpenedRun("new", run.path, run, {})
    if not is_run_folder(folder):
        raise FileExistsError(f"{folder} exists but is not a loopwise run folder (no {RUN_FILE}); "
                              "choose another name or root")
    if force:
        shutil.rmtree(folder)
        run = Run.create(root, name, config=config)
        return OpenedRun("new", run.path, run, {})
    if decide is None:
        run = Run.create(root, name, config=config)  # raises its "already exists"
        return OpenedRun("new", run.path, run, {})  # pragma: no cover - a race: created meanwhile
    info = read_run_info(folder)
    action = decide(folder, info)
    if action == "finished":
        return OpenedRun("finished", folder, None, info)
    if action != "resume":
        raise ValueError(f"decide() returned {action!r}; expected 'resume' or 'finished'")
    return OpenedRun("resume", folder, Run.reopen(folder), info)


def reopen_run(path: str | os.PathLike[str]) -> Run:
    """Continue the run in ``path`` (a checkpoint's run, a stage after fit's end) through
    :func:`open_run`: status back to ``running``, its global step continued."""
    folder = Path(path)
    opened = open_run(folder.parent, folder.name, decide=lambda _folder, _info: "resume")
    assert opened.run is not None
    return opened.run


def exists_error(folder: str | os.PathLike[str]) -> FileExistsError:
    """The error for a run that must not be written into (``Run.create``'s words): a ``decide``
    raises it to refuse."""
    path = Path(folder).absolute()
    return FileExistsError(f"a run named {path.name!r} already exists in {path.parent}; choose "
                           "another name, or leave name=None for a generated one")


def read_run_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``folder``'s ``run.json``: ``FileNotFoundError`` when it is missing (not a run folder),
    :class:`~loopwise.record.errors.CorruptRecordError` when it is not a JSON object (the
    folder is left as it was)."""
    path = Path(folder) / RUN_FILE
    if not is_run_folder(folder):
        raise FileNotFoundError(f"{Path(folder)} is not a loopwise run folder (no {RUN_FILE})")
    return load_json_object(path, hint="it was left as it was; restore it from a backup, or "
                                       "choose another name")


def run_finished(run: str | os.PathLike[str] | Mapping[str, Any]) -> bool:
    """The one "this run is finished" marker: its ``run.json`` (a folder, or the ``run.json``
    already read) says ``finished``. A folder that is not a run is not finished."""
    if not isinstance(run, Mapping):
        try:
            run = read_run_info(run)
        except (FileNotFoundError, ValueError):
            return False
    return resolve_status(dict(run)) == "finished"


def end_run(run: TrainingRun, exc_type: type[BaseException] | None = None,
            exc: BaseException | None = None, tb: TracebackType | None = None, *,
            status: str | None = None, error: str | None = None, own: bool = True,
            after: Callable[[Path], object] | None = None,
            before: Callable[[Path, str | None, str | None], object] | None = None) -> str:
    """End ``run`` as the block that used it ended (``exc_type, exc, tb``, as ``__exit__``
    gets them; or ``status``/``error`` already known): closed with that status when the caller
    made it (``own``), else flushed and left open for its owner. ``before(run.path, status,
    error)`` (the report) once the record is flushed and before the close, so that the run's
    exporters still upload what it writes (``status`` None for a run left open);
    ``after(run.path)`` once the run is closed. Their failures are logged. A flush that fails
    (a full disk) never keeps the run from closing: a failing run closes with its own error
    (the flush's is logged), a finishing one closes ``failed`` with the flush's error, which is
    then raised. Returns the status."""
    if status is None:
        status, text = exit_status(exc_type, exc, tb)
        error = text if error is None else error
    if not run.closed:
        failure: Exception | None = None
        if before is not None or not own:
            try:
                run.flush()
            except Exception as exc:  # a full disk: the run is closed all the same (its lock
                if not own:  # released, its status written as far as the disk lets it)
                    raise
                if status == "finished":  # the flush's error is the run's: it fails with it
                    failure = exc
                    status, error = exit_status(type(exc), exc, exc.__traceback__)
                else:  # never raised over the run's own error
                    _log_failure(run.path, exc)
        if before is not None:
            _view(before, run.path, status if own else None, error if own else None)
        if own:
            run.close(status, error=error)
        if failure is not None:
            raise failure
    if after is not None:
        _view(after, run.path)
    return status


def _view(write: Callable[..., object], *args: Any) -> None:
    """Write a view of the run (its report): a failure is logged, never replaces how it ended."""
    try:
        write(*args)
    except Exception as exc:
        _log_failure(args[0], exc)


def _log_failure(path: Path, exc: BaseException) -> None:
    logging.getLogger("loopwise").warning(
        "at the end of %s: %s: %s", path, type(exc).__name__, exc)
