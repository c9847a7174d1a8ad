"""A reader in the process writing a run sees what the run queued (record/live.py): a loop's
pass end leaves the SQLite commit to the store's thread, yet a run read right after the loop
has every step."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from loopwise.record.live import LiveRuns
from loopwise.record.reader import RunReader
from loopwise.record.run import Run


def _columns(first: int, n: int) -> dict[str, tuple[array[int], array[float], array[float]]]:
    steps = array("q", range(first, first + n))
    return {"loss": (steps, array("d", [1.0] * n), array("d", [0.5] * n))}


def test_a_reader_in_the_writing_process_sees_what_was_queued(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "live", flush_interval=1.0)  # the store thread: a tick a second
    run.advance(100)
    run.log_columns(_columns(1, 100))
    run.log_event("pass_end", "100 steps")
    run.flush(wait=False)  # what a pass end does: nothing written on this thread
    reader = RunReader(tmp_path / "live")
    assert list(reader.series("loss").steps) == list(range(1, 101))
    assert [e.kind for e in reader.events(kind="pass_end")] == ["pass_end"]
    run.close()


def test_a_closed_run_is_forgotten_and_a_symlinked_path_is_the_same_run(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "gone", flush_interval=1.0)
    (tmp_path / "alias").symlink_to(tmp_path / "gone")
    run.log_columns(_columns(1, 3))
    assert list(RunReader(tmp_path / "alias").series("loss").steps) == [1, 2, 3]
    assert LiveRuns.find(tmp_path / "gone") is not None
    run.close()
    assert LiveRuns.find(tmp_path / "gone") is None
    assert list(RunReader(tmp_path / "gone").series("loss").steps) == [1, 2, 3]


def test_flush_wait_takes_a_bool(tmp_path: Path) -> None:
    with Run.create(tmp_path, "w") as run, pytest.raises(
            TypeError, match=r"flush\(wait=\) takes True or False, got 'no'"):
        run.flush(wait="no")  # type: ignore[arg-type]
