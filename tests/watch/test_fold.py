import csv
import io
from pathlib import Path

import torch

from loopwise.watch.accumulator import LoopStats
from loopwise.watch.convert import read_tensor_slots
from loopwise.watch.csvlog import CsvLog
from loopwise.watch.fold import fold_into_csv, fold_window
from loopwise.watch.metrics import RunningAverages
from loopwise.watch.window import take_columns


def test_device_values_become_floats_in_place() -> None:
    rows = [{"loss": torch.tensor(0.5), "acc": torch.tensor(0.25, dtype=torch.float16)},
            {"loss": 1.5}]
    read_tensor_slots((row, key) for row in rows for key in row)
    assert rows == [{"loss": 0.5, "acc": 0.25}, {"loss": 1.5}]
    assert all(type(v) is float for row in rows for v in row.values())


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


def test_the_uniform_fold_writes_what_the_step_by_step_fold_writes(tmp_path: Path) -> None:
    times = [1_700_000_000.0 + i / 7 for i in range(6)]
    outputs = []
    for name in ("uniform", "general"):
        log = CsvLog(tmp_path / f"{name}.csv")
        averages = RunningAverages()
        averages.add({"loss": 2.0, "old": 7.0})  # earlier windows: one metric not logged now
        pending = {"loss": ([1, 2, 3, 4, 5, 6], [1.0, 0.5, float("inf"), 0.25, 3, 1.0]),
                   "acc": ([1, 2, 3, 4, 5, 6], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])}
        window = take_columns(pending, times, 10, 0.0, 0.0)
        assert window.uniform
        if name == "uniform":
            bad = fold_window(window, averages, log)
        else:
            bad = fold_into_csv(window.columns, averages, log)
        log.close()
        outputs.append(((tmp_path / f"{name}.csv").read_text(), bad, averages.counts,
                        averages.nonfinite))
    uniform, general = outputs
    assert uniform == general
    rows = list(csv.DictReader(io.StringIO(uniform[0])))
    assert [r["step"] for r in rows] == ["11", "12", "13", "14", "15", "16"]
    assert rows[0]["loss"] == "1.5" and rows[0]["old"] == "7.0" and rows[2]["loss"] == "inf"
    assert uniform[1] == ["loss"] and uniform[3] == {"loss": 1}
