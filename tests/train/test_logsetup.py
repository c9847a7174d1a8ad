"""setup_logging: a timestamped file and console log per model name, never doubled."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest

from loopwise.train.fit.logsetup import close_logging, setup_logging

STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - "


def test_file_and_console_with_timestamps(tmp_path: Path) -> None:
    console = io.StringIO()
    log = setup_logging("exp", log_dir=tmp_path, stream=console)
    log.info("epoch %d done", 1)
    close_logging(log)
    line = (tmp_path / "exp_training.log").read_text().splitlines()[0]
    assert re.match(STAMP + r"INFO - epoch 1 done$", line)
    assert re.match(STAMP + r"INFO - epoch 1 done$", console.getvalue().strip())


def test_calling_again_does_not_double_lines_and_appends(tmp_path: Path) -> None:
    first = setup_logging("exp", log_dir=tmp_path, console=False)
    first.info("one")
    again = setup_logging("exp", log_dir=tmp_path, console=False)
    ours = [h for h in again.handlers if isinstance(h, logging.FileHandler)]
    assert again is first and len(ours) == 1
    again.info("two")
    close_logging(again)
    assert not [h for h in again.handlers if isinstance(h, logging.FileHandler)]
    lines = (tmp_path / "exp_training.log").read_text().splitlines()
    assert [line.split(" - ")[-1] for line in lines] == ["one", "two"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_name must be a non-empty name without '/'"):
        setup_logging("a/b", log_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="log_dir .*missing is not a folder"):
        setup_logging("x", log_dir=tmp_path / "missing")
