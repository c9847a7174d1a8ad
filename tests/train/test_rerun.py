"""The one rerun decision for fit and Workflow: new, resume, finished, or refused with the
differences (and nothing changed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwise.train.resume.rerun import RerunRefused, decide_rerun, differences

WAY_OUT = "pass force=True to start again"


def _decide(folder: Path, saved: dict[str, object], current: dict[str, object], *,
            finished: bool = False, override: bool = False) -> str:
    return decide_rerun(folder, saved=saved, current=current, finished=finished,
                        what="the args", saved_in=folder / "args.json", way_out=WAY_OUT,
                        override=override).action


def test_differences_show_changed_added_removed_and_nested() -> None:
    diff = differences({"lr": 0.1, "bs": 32, "old": 1, "meta": {"data": "a"}},
                       {"lr": 0.01, "bs": 32, "new": True, "meta": {"data": "b"}})
    assert diff == ["lr: 0.1 (saved) -> 0.01 (now)", "meta.data: 'a' (saved) -> 'b' (now)",
                    "+ new: True (given now, not saved)", "- old: 1 (saved, not given now)"]
    assert differences({"a": 1}, {"a": 1}) == []


def test_new_resume_finished(tmp_path: Path) -> None:
    assert _decide(tmp_path / "absent", {}, {"lr": 1}) == "new"
    assert _decide(tmp_path, {"lr": 1}, {"lr": 1}) == "resume"
    assert _decide(tmp_path, {"lr": 1}, {"lr": 1}, finished=True) == "finished"


def test_differences_refuse_unless_overridden(tmp_path: Path) -> None:
    with pytest.raises(RerunRefused) as caught:
        _decide(tmp_path, {"lr": 1}, {"lr": 2}, finished=True)
    assert str(caught.value) == (f"the args differ from the ones saved in {tmp_path / 'args.json'}"
                                 f":\n  lr: 1 (saved) -> 2 (now)\n{WAY_OUT}")
    assert caught.value.differences == ["lr: 1 (saved) -> 2 (now)"]
    decision = decide_rerun(tmp_path, saved={"lr": 1}, current={"lr": 2}, finished=False,
                            what="the args", saved_in="x", way_out=WAY_OUT, override=True)
    assert decision.action == "resume" and decision.differences == ["lr: 1 (saved) -> 2 (now)"]
