"""Decide what a named fit does with its run folder: start, resume, skip, or start again.

``plan_run(root, name, params, model_name=..., force=...)`` looks at ``<root>/<name>/``:

- no folder: a new run;
- a folder whose recorded parameters (``config.json``) differ: an error listing the differences
  (pass ``force=True`` to start again, or another name); the decision is the one Workflow makes
  too (``loopwise.train.resume.rerun.decide_rerun``);
- same parameters and a finished result (``<model_name>_results.json``): **skip**, the caller
  returns the saved result;
- same parameters, not finished (interrupted, crashed, failed): **resume** (``Run.reopen``);
  the fit engine continues from the latest good checkpoint;
- ``force=True``: the old folder is deleted (only when it is a loopwise run folder) and a new
  run starts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.record import Run, validate_run_name
from loopwise.record.folder import CONFIG_FILE, RUN_FILE
from loopwise.train.fit.files import RESULTS, fit_file
from loopwise.train.resume.rerun import decide_rerun


@dataclass
class RunPlan:
    action: str  # "new", "resume" or "skip"
    path: Path
    run: Run | None  # None when skipping


def plan_run(root: str | Path, name: str, params: Mapping[str, Any], *, model_name: str,
             force: bool = False) -> RunPlan:
    """Open (or not) the run ``root/name`` for ``params``; see the module docstring."""
    validate_run_name(name)
    params = json.loads(json.dumps(dict(params)))  # compare as they read back from disk
    folder = Path(root) / name
    if not folder.exists():
        return RunPlan("new", folder, Run.create(root, name, config=params))
    if not (folder / RUN_FILE).is_file():
        raise FileExistsError(f"{folder} exists but is not a loopwise run folder (no {RUN_FILE}); "
                              "choose another name or root")
    if force:
        shutil.rmtree(folder)
        return RunPlan("new", folder, Run.create(root, name, config=params))
    decision = decide_rerun(
        folder, saved=_saved_params(folder), current=params,
        finished=is_finished(folder, model_name),
        what=f"the parameters of run {folder}", saved_in=folder / CONFIG_FILE,
        way_out="pass force=True (--force) to start it again, or choose another name")
    if decision.action == "finished":
        return RunPlan("skip", folder, None)
    return RunPlan("resume", folder, Run.reopen(folder))


def is_finished(folder: str | Path, model_name: str) -> bool:
    """True when ``folder`` holds a finished fit of ``model_name`` (its results file): a rerun
    with the same parameters is skipped and returns the saved result."""
    return fit_file(folder, model_name, RESULTS).is_file()


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
