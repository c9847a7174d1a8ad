import csv
from pathlib import Path

import torch

from loopwise.watch.csvlog import CsvLog
from loopwise.watch.fold import LoopStats, fold_into_csv, resolve_device_values
from loopwise.watch.metrics import RunningAverages


def test_device_values_become_floats_in_place() -> None:
    columns = {"loss": ([1, 2], [0.0, 0.0], [torch.tensor(0.5), 1.5]),
               "acc": ([1], [0.0], [torch.tensor(0.25, dtype=torch.float16)])}
    resolve_device_values(columns)  # type: ignore[arg-type]
    assert columns["loss"][2] == [0.5, 1.5] and columns["acc"][2] == [0.25]
    assert all(type(v) is float for v in columns["loss"][2])


def test_fold_into_csv_one_row_per_step_in_step_order(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "t.csv")
    averages = RunningAverages()
    bad = fold_into_csv({"loss": ([1, 2], [10.0, 11.0], [1.0, float("nan")]),
                         "acc": ([2], [11.5], [0.5])}, averages, log)
    log.close()
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[0]["loss"] == "1.0" and rows[1]["acc"] == "0.5"
    assert bad == ["loss"] and averages.nonfinite == {"loss": 1}


def test_loop_stats_share() -> None:
    assert LoopStats(10, 1.0, 3.0).data_wait_share == 0.25
    assert LoopStats(0, 0.0, 0.0).data_wait_share == 0.0
