import csv
import os
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader
from loopwise.record.export import run_to_csv
from loopwise.utils.atomic import UnsafeTargetError


def test_export_neutralises_keys_and_never_duplicates_a_column(tmp_path: Path) -> None:
    with Run.create(tmp_path, "r") as run:
        run.log_scalars({"=cmd|' /C calc'!A0": 1.0, "step": 2.0, "wall_time": 3.0,
                         "+x": -0.5}, step=7, wall_time=100.0)
    out = run_to_csv(RunReader(run.path), tmp_path / "out.csv")
    rows = list(csv.reader(out.open()))
    assert rows == [["step", "wall_time", "'=cmd|' /C calc'!A0", "step_metric",
                     "wall_time_metric", "'+x"],
                    ["7", "100.0", "1.0", "2.0", "3.0", "-0.5"]]


def test_export_refuses_a_fifo_before_reading_the_run(tmp_path: Path) -> None:
    with Run.create(tmp_path, "r") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafeTargetError, match="fifo: it is a FIFO"):
        run_to_csv(RunReader(run.path), tmp_path / "fifo")
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name such as run.csv"):
        run_to_csv(RunReader(run.path), tmp_path)
