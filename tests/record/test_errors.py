import errno
import sqlite3
from pathlib import Path

import pytest

from loopwise.record.errors import (
    CorruptRecordError,
    DiskFullError,
    is_disk_full,
    load_json_object,
)


def test_is_disk_full_knows_the_os_and_sqlite_spellings() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(DiskFullError("x"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(ValueError("no space"))


def test_disk_full_error_names_the_path_and_what_to_do(tmp_path: Path) -> None:
    err = DiskFullError(tmp_path / "f")
    assert str(err) == (f"no space left on the device holding {tmp_path / 'f'}; free space and "
                        "resume (what was written before is kept and readable)")
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC and err.path == tmp_path / "f"


@pytest.mark.parametrize(("text", "reason"), [
    ("null", "it holds a JSON null, not an object"),
    ("true", "it holds a JSON boolean, not an object"),
    ("1.5", "it holds a JSON number, not an object"),
    ("{]", "not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
])
def test_load_json_object_names_the_file_the_problem_and_the_remedy(
        tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(CorruptRecordError) as info:
        load_json_object(tmp_path / "x.json", hint="do this")
    assert str(info.value) == f"{tmp_path / 'x.json'} is corrupt ({reason}); do this"
    assert isinstance(info.value, ValueError) and info.value.reason == reason
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert load_json_object(tmp_path / "x.json", hint="-") == {"a": 1}
