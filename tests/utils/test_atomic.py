import json
import os
import stat
from pathlib import Path

import pytest

from loopwise.utils import atomic
from loopwise.utils.atomic import atomic_write_json, atomic_write_text


def test_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "n.json", {"x": float("nan")})
    assert not (tmp_path / "n.json").exists()


def test_fsync_dir_on_missing_dir_is_silent(tmp_path: Path) -> None:
    atomic.fsync_dir(tmp_path / "nope")
    assert os.path.isdir(tmp_path)


def test_written_files_follow_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o644


def test_a_symlink_target_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    pointee = tmp_path / "real.txt"
    pointee.write_text("keep me")
    link = tmp_path / "link.txt"
    link.symlink_to(pointee)
    with pytest.raises(atomic.UnsafeTargetError,
                       match=r"refusing to write .*link\.txt: it is a symbolic link, and loopwise "
                             r"only replaces regular files; give the path of a new or regular"):
        atomic_write_text(link, "new")
    assert link.is_symlink() and pointee.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_a_fifo_target_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(atomic.UnsafeTargetError, match=r"pipe: it is a FIFO \(named pipe\)"):
        atomic_write_json(fifo, {"x": 1})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_a_folder_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(atomic.UnsafeTargetError, match="it is a folder"):
        atomic_write_text(tmp_path / "d", "x")
    assert (tmp_path / "d").is_dir()


def test_check_target_accepts_absent_and_regular_files(tmp_path: Path) -> None:
    assert atomic.check_target(tmp_path / "new.txt") == tmp_path / "new.txt"
    (tmp_path / "old.txt").write_text("x")
    assert atomic.check_target(tmp_path / "old.txt") == tmp_path / "old.txt"
    assert atomic.check_target(tmp_path / "file" / "below") == tmp_path / "file" / "below"
