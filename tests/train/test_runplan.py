"""plan_run: new, skip, resume, refuse, force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopwise.record import Run
from loopwise.train.fit.runplan import plan_run


def test_new_then_resume_then_skip(tmp_path: Path) -> None:
    plan = plan_run(tmp_path, "exp", {"lr": 0.1}, model_name="m")
    assert plan.action == "new" and plan.run is not None
    plan.run.close("interrupted")
    plan = plan_run(tmp_path, "exp", {"lr": 0.1}, model_name="m")
    assert plan.action == "resume" and plan.run is not None
    assert plan.run.status == "running"
    plan.run.close()
    (tmp_path / "exp" / "m_results.json").write_text("{}")
    plan = plan_run(tmp_path, "exp", {"lr": 0.1}, model_name="m")
    assert plan.action == "skip" and plan.run is None


def test_different_parameters_are_refused_with_the_differences(tmp_path: Path) -> None:
    plan_run(tmp_path, "exp", {"lr": 0.1, "layers": 2, "meta": {"data": "a.csv"}},
             model_name="m").run.close()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"(?s)differ from the ones saved in .*config.json:\n"
                                         r"  - layers: 2 \(saved, not given now\)\n"
                                         r"  lr: 0.1 \(saved\) -> 0.2 \(now\)\n"
                                         r"  meta.data: 'a.csv' \(saved\) -> 'b.csv' \(now\)\n"
                                         r"pass force=True \(--force\)"):
        plan_run(tmp_path, "exp", {"lr": 0.2, "meta": {"data": "b.csv"}}, model_name="m")


def test_force_replaces_the_run_folder(tmp_path: Path) -> None:
    run = plan_run(tmp_path, "exp", {"lr": 0.1}, model_name="m").run
    assert run is not None
    run.close()
    (tmp_path / "exp" / "old.txt").write_text("old")
    plan = plan_run(tmp_path, "exp", {"lr": 0.5}, model_name="m", force=True)
    assert plan.action == "new" and not (tmp_path / "exp" / "old.txt").exists()
    assert json.loads((tmp_path / "exp" / "config.json").read_text()) == {"lr": 0.5}
    assert plan.run is not None
    plan.run.close()


def test_a_folder_that_is_not_a_run_is_never_deleted(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists but is not a loopwise run folder"):
        plan_run(tmp_path, "exp", {}, model_name="m", force=True)
    assert (tmp_path / "exp" / "precious.txt").exists()


def test_corrupt_config_is_reported(tmp_path: Path) -> None:
    Run.create(tmp_path, "exp", config={"a": 1}).close()
    (tmp_path / "exp" / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"config.json: line 1: corrupt .*pass force=True"):
        plan_run(tmp_path, "exp", {"a": 1}, model_name="m")
