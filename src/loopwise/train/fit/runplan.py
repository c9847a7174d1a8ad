"""Decide what a named fit does with its run folder: start, resume, skip, or start again.

``plan_run(root, name, params, model_name=..., force=...)`` looks at ``<root>/<name>/``:

- no folder: a new run;
- a folder whose recorded parameters (``config.json``) differ: an error listing the differences
  (pass ``force=True`` to start again, or another name); the decision is the one Workflow makes
  too (``loopwise.train.resume.rerun.decide_rerun``);
- same parameters and a finished run (the one marker: ``run.json`` says ``finished``) whose
  result (``<model_name>_results.json``) is there: **skip**, the caller returns that result;
- same parameters, not finished (interrupted, crashed, failed): **resume** (``Run.reopen``);
  the fit engine continues from the latest good checkpoint;
- ``force=True``: the old folder is deleted (only when it is a loopwise run folder) and a new
  run starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record import Run, validate_run_name
from loopwise.record.folder import CONFIG_FILE
from loopwise.record.opening import open_run, run_finished
from loopwise.train.fit.files import RESULTS, fit_file
from loopwise.train.resume.rerun import decide_rerun


@dataclass
class RunPlan:
    action: str  # "new", "resume" or "skip"
    path: Path
    run: Run | None  # None when skipping


def plan_run(root: str | Path, name: str, params: Mapping[str, Any], *, model_name: str,
             force: bool = False) -> RunPlan:
    """Open (or not) the run ``root/name`` for ``params`` through the one opener
    (:func:`loopwise.record.opening.open_run`); see the module docstring."""
    validate_run_name(name)
    params = json.loads(json.dumps(dict(params)))  # compare as they read back from disk

    def decide(folder: Path, info: dict[str, Any]) -> str:
        return decide_rerun(
            folder, saved=_saved_params(folder), current=params,
            finished=run_finished(info) and fit_file(folder, model_name, RESULTS).is_file(),
            what=f"the parameters of run {folder}", saved_in=folder / CONFIG_FILE,
            way_out="pass force=True (--force) to start it again, or choose another name"
        ).action

    opened = open_run(root, name, config=params, decide=decide, force=force)
    action = "skip" if opened.action == "finished" else opened.action
    return RunPlan(action, Path(root) / name, opened.run)


def is_finished(folder: str | Path, model_name: str) -> bool:
    """True when ``folder`` holds a finished fit (the one marker,
    :func:`~loopwise.record.opening.run_finished`; its ``<model_name>_results.json`` is what a
    rerun with the same parameters returns)."""
    return run_finished(folder) and fit_file(folder, model_name, RESULTS).is_file()


def _saved_params(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: corrupt ({exc.msg}); pass force=True to "
                         "start the run again") from None
    return data if isinstance(data, dict) else {}
