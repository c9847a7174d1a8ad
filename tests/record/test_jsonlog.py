"""JsonLog: JSON-lines events and metrics with RotatingFileHandler rotation."""

from __future__ import annotations

import errno
import io
import json
import logging
import math
import subprocess
import sys
from datetime import datetime

import pytest

from loopwise.record import Run
from loopwise.record.errors import DiskFullError
from loopwise.record.folder import LOG_FILE
from loopwise.record.jsonlog import JsonLog, read_json_log
from loopwise.utils.isotime import iso


def test_events_and_metrics_are_one_json_object_per_line(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonLog(path, clock=lambda: 1_700_000_000.25) as log:
        log.event("plateau", "val_loss has not improved", level="warning", data={"n": 5})
        log.metrics({"train_loss": 0.5, "val_loss": math.nan}, step=120, epoch=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    event, metrics = (json.loads(line) for line in lines)
    assert event["ts"] == 1_700_000_000.25 and event["time"].endswith(".250")
    assert {k: event[k] for k in ("level", "type", "kind", "message", "data")} == {
        "level": "warning", "type": "event", "kind": "plateau",
        "message": "val_loss has not improved", "data": {"n": 5}}
    assert metrics["type"] == "metrics" and metrics["step"] == 120 and metrics["epoch"] == 3
    assert metrics["values"] == {"train_loss": 0.5, "val_loss": None}  # NaN: null


def test_explicit_time_is_kept(tmp_path):
    with JsonLog(tmp_path / "l.jsonl") as log:
        log.event("x", "m", time=5.0)
    assert read_json_log(tmp_path / "l.jsonl")[0]["ts"] == 5.0


def test_size_based_rotation_keeps_backup_count_files(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonLog(path, max_bytes=1000, backup_count=2) as log:
        for i in range(100):
            log.metrics({"loss": 1.0 / (i + 1)}, step=i)
        files = log.files()
    assert [p.name for p in files] == ["log.jsonl.2", "log.jsonl.1", "log.jsonl"]
    assert not (tmp_path / "log.jsonl.3").exists()
    assert all(p.stat().st_size <= 1000 for p in files)
    rows = read_json_log(path)
    steps = [r["step"] for r in rows]
    assert steps == list(range(steps[0], 100))  # oldest lines rotated away, the rest in order
    assert 0 < steps[0] < 100


def test_every_run_keeps_one_in_its_folder_closed_with_the_run(tmp_path):
    run = Run.create(tmp_path, "r")
    run.log_event("started", "hello")
    run.close()
    assert read_json_log(run.path / LOG_FILE)[0]["kind"] == "started"
    log = JsonLog(tmp_path / "l.jsonl")
    log.close()
    with pytest.raises(RuntimeError, match="is closed; nothing more can be written"):
        log.event("late", "too late")


def test_lines_do_not_reach_the_root_logger(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with JsonLog(tmp_path / "l.jsonl") as log:
        log.event("x", "private")
    assert "private" not in caplog.text


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"max_bytes": 0}, ValueError, r"max_bytes must be an int >= 1 \(bytes per file before "
                                   r"rotating\), got 0"),
    ({"max_bytes": -5}, ValueError, "max_bytes must be an int >= 1 .*, got -5"),
    ({"max_bytes": 1.5}, TypeError, "max_bytes must be an int .*, got float"),
    ({"backup_count": 0}, ValueError, r"backup_count must be an int >= 1 \(rotated files kept\)"),
])
def test_invalid_sizes_are_clear_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        JsonLog(tmp_path / "l.jsonl", **kwargs)


def test_other_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="its folder does not exist"):
        JsonLog(tmp_path / "missing" / "l.jsonl")
    with JsonLog(tmp_path / "l.jsonl") as log:
        with pytest.raises(ValueError, match="level must be one of debug, info"):
            log.event("x", "m", level="fatal")
        with pytest.raises(TypeError, match=r"value of 'loss' must be a real number \(int or float\)"):
            log.metrics({"loss": "high"}, step=1)
        with pytest.raises(TypeError, match="step must be an int"):
            log.metrics({"loss": 1.0}, step=1.0)
        with pytest.raises(ValueError, match="event kind must be a non-empty string"):
            log.event("", "m")


def test_a_corrupt_line_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "l.jsonl").write_text('{"a": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"l.jsonl:2 is not valid JSON"):
        read_json_log(tmp_path / "l.jsonl")


def test_the_record_modules_import_no_torch():
    code = ("import sys, loopwise.record.jsonlog, loopwise.record.stats; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


class FullDisk(io.StringIO):
    """A file on a full disk: every write fails with ENOSPC (a fake file, not a device)."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_clear_error_not_logging_error_blocks(tmp_path, capsys):
    path = tmp_path / "l.jsonl"
    log = JsonLog(path, clock=lambda: 1.0)
    log.event("kept", "written before the disk filled")
    log._handler.stream = FullDisk()  # the disk fills up
    message = (f"no space left on the device holding {path}; free space and resume (what was "
               "written before is kept and readable)")
    with pytest.raises(DiskFullError) as info:
        log.event("lost", "m")
    assert str(info.value) == message
    for _ in range(3):  # every later write is refused with the same error, silently otherwise
        with pytest.raises(DiskFullError) as again:
            log.metrics({"loss": 1.0}, step=1)
        assert str(again.value) == message
    log.close()
    assert capsys.readouterr().err == ""  # no "--- Logging error ---" block
    assert [line["kind"] for line in read_json_log(path)] == ["kept"]


def test_a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path):
    (tmp_path / "l.jsonl").write_text('{"a": 1}\n{"b": ', encoding="utf-8")
    assert read_json_log(tmp_path / "l.jsonl") == [{"a": 1}]


def test_times_use_the_one_iso_format_and_nan_is_null(tmp_path):
    path = tmp_path / "l.jsonl"
    with JsonLog(path, clock=lambda: 1_700_000_000.9996) as log:
        log.metrics({"a": math.inf, "b": -math.inf, "c": math.nan}, step=1)
    line = json.loads(path.read_text(encoding="utf-8"))
    assert line["time"] == iso(1_700_000_000.9996) == datetime.fromtimestamp(
        1_700_000_000.9996).isoformat(timespec="milliseconds")
    assert line["values"] == {"a": None, "b": None, "c": None}
    assert "NaN" not in path.read_text(encoding="utf-8")
