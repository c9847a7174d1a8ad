"""The one opener, the one finished marker and the one end of a run (record/opening.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader
from loopwise.record.opening import end_run, open_run, read_run_info, run_finished


def test_new_then_resume_then_finished(tmp_path: Path) -> None:
    opened = open_run(tmp_path, "exp", config={"lr": 0.1})
    assert opened.action == "new" and opened.run is not None and opened.info == {}
    opened.run.advance(5)
    opened.run.close("interrupted")
    seen: list[str] = []

    def decide(folder: Path, info: dict[str, object]) -> str:
        seen.append(str(info["status"]))
        return "finished" if run_finished(info) else "resume"

    again = open_run(tmp_path, "exp", decide=decide)
    assert again.action == "resume" and again.run is not None
    assert again.run.global_step == 5 and again.run.status == "running"
    again.run.close("finished")
    done = open_run(tmp_path, "exp", decide=decide)
    assert done.action == "finished" and done.run is None and done.info["status"] == "finished"
    assert seen == ["interrupted", "finished"]


def test_an_existing_run_is_never_written_into_without_a_decision(tmp_path: Path) -> None:
    Run.create(tmp_path, "exp").close()
    with pytest.raises(FileExistsError, match="a run named 'exp' already exists"):
        open_run(tmp_path, "exp")
    with pytest.raises(ValueError, match=r"decide\(\) returned 'new'; expected 'resume' or "
                                         r"'finished'"):
        open_run(tmp_path, "exp", decide=lambda folder, info: "new")
    assert RunReader(tmp_path / "exp").status == "finished"  # untouched


def test_a_refusal_from_decide_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    Run.create(tmp_path, "exp").close("failed")
    before = (tmp_path / "exp" / "run.json").read_bytes()

    def refuse(folder: Path, info: dict[str, object]) -> str:
        raise ValueError("the parameters differ")

    with pytest.raises(ValueError, match="the parameters differ"):
        open_run(tmp_path, "exp", decide=refuse)
    assert (tmp_path / "exp" / "run.json").read_bytes() == before


def test_force_replaces_a_run_but_never_a_folder_that_is_not_one(tmp_path: Path) -> None:
    Run.create(tmp_path, "exp").close()
    (tmp_path / "exp" / "old.txt").write_text("old")
    opened = open_run(tmp_path, "exp", force=True)
    assert opened.action == "new" and not (tmp_path / "exp" / "old.txt").exists()
    assert opened.run is not None
    opened.run.close()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="exists but is not a loopwise run folder"):
        open_run(tmp_path, "mine", force=True)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_the_finished_marker_is_the_status_a_reader_sees(tmp_path: Path) -> None:
    for status in ("finished", "failed", "interrupted"):
        Run.create(tmp_path, status).close(status)
        assert run_finished(tmp_path / status) is (status == "finished")
    assert not run_finished(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("[1]")
    assert not run_finished(tmp_path / "bad")
    with pytest.raises(ValueError, match="run.json is corrupt .*it was left as it was"):
        read_run_info(tmp_path / "bad")
    # a writer that died while running is "crashed", not finished
    assert not run_finished({"status": "running", "host": "elsewhere", "heartbeat": 0.0})


def test_end_run_takes_the_status_from_the_exception_and_always_reports(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    written: list[Path] = []
    run = Run.create(tmp_path, "failed")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        status = end_run(run, type(exc), exc, exc.__traceback__, after=written.append)
    assert status == "failed" and written == [run.path]
    reader = RunReader(run.path)
    assert reader.status == "failed" and "RuntimeError: boom" in reader.info["error"]

    given = Run.create(tmp_path, "given")
    assert end_run(given, KeyboardInterrupt, KeyboardInterrupt(), None, own=False) == \
        "interrupted"
    assert not given.closed  # a run the caller did not make is flushed, left to its owner
    given.close()

    def broken(path: Path) -> None:
        raise OSError("disk full")

    with caplog.at_level(logging.WARNING, logger="loopwise"):
        assert end_run(Run.create(tmp_path, "ok"), after=broken) == "finished"
    assert "OSError: disk full" in caplog.text
    assert RunReader(tmp_path / "ok").status == "finished"
