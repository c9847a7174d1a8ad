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


def test_export_round_trips_every_value_exactly(tmp_path: Path) -> None:
    import math

    import numpy as np

    rng = np.random.default_rng(1)
    n = 3_000
    wild = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    wild[::97] = math.nan
    wild[5::89] = math.inf
    wild[7::101] = -0.0
    with Run.create(tmp_path, "r") as run:
        for i in range(n):  # "loss" every step; "val" every 10th; "lr" twice at some steps
            scalars = {"loss": float(wild[i])}
            if i % 10 == 0:
                scalars["val"] = float(1.0 / (i + 3))
            run.log_scalars(scalars, step=i, wall_time=1.7e9 + i * 1e-3)
            if i % 500 == 0:
                run.log_scalars({"lr": 0.1}, step=i, wall_time=1.7e9 + i * 1e-3 - 1)
                run.log_scalars({"lr": 0.05 + i}, step=i, wall_time=1.7e9 + i * 1e-3 + 7)
    out = run_to_csv(RunReader(run.path), tmp_path / "out.csv")
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == ["step", "wall_time", "loss", "val", "lr"]
    assert len(rows) == n + 1
    for i, row in enumerate(rows[1:]):
        assert int(row[0]) == i
        wall = 1.7e9 + i * 1e-3 + (7 if i % 500 == 0 else 0)  # the latest time at the step
        assert float(row[1]) == wall and row[1] == repr(wall)
        got, want = float(row[2]), float(wild[i])
        assert (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want))
        assert row[2] == repr(want)
        assert row[3] == (repr(1.0 / (i + 3)) if i % 10 == 0 else "")
        assert row[4] == (repr(0.05 + i) if i % 500 == 0 else "")  # the last one logged
    assert out.read_bytes().endswith(b"\r\n") and b"\r\n\r\n" not in out.read_bytes()
