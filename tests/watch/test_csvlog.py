import csv
import os
from pathlib import Path

import pytest

from loopwise.watch.csvlog import CsvLog, iso_stamps


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_rows_flush_on_timer_not_before(tmp_path: Path) -> None:
    clock = FakeClock()
    log = CsvLog(tmp_path / "t.csv", clock=clock)
    log.add(0.0, 1, {"loss": 1.0}, 10.0, 0.0)
    log.maybe_flush()
    assert (tmp_path / "t.csv").read_text() == ""
    clock.t = 1.0
    log.maybe_flush()
    assert _rows(tmp_path / "t.csv")[0]["loss"] == "1.0"
    log.close()


def test_late_metric_adds_a_column_and_keeps_rows(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "t.csv")
    log.add(0.0, 1, {"loss": 1.0}, 10.0, 0.0)
    log.flush()
    log.add(0.0, 2, {"loss": 0.5, "acc": 0.9}, 10.0, 0.0)
    log.close()
    with (tmp_path / "t.csv").open() as fh:
        header = next(csv.reader(fh))
    assert header == ["timestamp", "step", "loss", "acc", "RAM_pct", "VRAM_gb"]
    rows = _rows(tmp_path / "t.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[0]["acc"] == "" and rows[1]["acc"] == "0.9"
    assert rows[0]["RAM_pct"] == "10.0"


def test_existing_loopwise_csv_is_continued(tmp_path: Path) -> None:
    first = CsvLog(tmp_path / "t.csv")
    first.add(0.0, 1, {"loss": 1.0}, 1.0, 0.0)
    first.close()
    second = CsvLog(tmp_path / "t.csv")
    second.add(0.0, 2, {"loss": 0.5}, 1.0, 0.0)
    second.close()
    assert [r["step"] for r in _rows(tmp_path / "t.csv")] == ["1", "2"]


def test_foreign_csv_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="exists and is not a loopwise CSV"):
        CsvLog(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,2\n"


def test_unwritable_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        CsvLog(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="cannot write log_file .*choose a path"):
        CsvLog(blocker / "sub" / "t.csv")


def test_iso_stamps_match_datetime_isoformat() -> None:
    from datetime import datetime
    walls = [1_700_000_000.0, 1_700_000_000.1234, 1_700_000_000.9996, 1_700_000_061.5]
    assert iso_stamps(walls) == [
        datetime.fromtimestamp(w).isoformat(timespec="milliseconds") for w in walls]


def test_metric_names_are_neutralised_and_never_duplicate_a_column(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "t.csv")
    log.add(0.0, 1, {"=HYPERLINK(\"x\")": 1.0, "step": 2.0, "RAM_pct": 3.0, "a\x1b[2Jb": 4.0,
                     "-0.5": 5.0}, 10.0, 0.5)
    log.add_rows([1.0, 2.0], [2, 3], {"step": [6.0, 7.0], "timestamp": 8.0}, 11.0, 0.25)
    log.close()
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert rows[0] == ["timestamp", "step", "'=HYPERLINK(\"x\")", "step_metric", "RAM_pct_metric",
                       "a\\x1b[2Jb", "'-0.5", "timestamp_metric", "RAM_pct", "VRAM_gb"]
    assert rows[1][1:] == ["1", "1.0", "2.0", "3.0", "4.0", "5.0", "", "10.0", "0.5"]
    assert rows[2][1:] == ["2", "", "6.0", "", "", "", "8.0", "11.0", "0.25"]
    assert rows[3][1:] == ["3", "", "7.0", "", "", "", "8.0", "11.0", "0.25"]
    again = CsvLog(tmp_path / "t.csv")  # continued: the same names find their columns
    again.add(3.0, 4, {"step": 9.0, "=HYPERLINK(\"x\")": 1.5}, 1.0, 0.0)
    again.close()
    last = list(csv.DictReader((tmp_path / "t.csv").open()))[-1]
    assert last["step"] == "4" and last["step_metric"] == "9.0"
    assert last["'=HYPERLINK(\"x\")"] == "1.5"


def test_a_symlink_or_fifo_log_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    with pytest.raises(ValueError, match="link.csv: it is a symbolic link"):
        CsvLog(tmp_path / "link.csv")
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(ValueError, match=r"fifo.csv: it is a FIFO \(named pipe\)"):
        CsvLog(tmp_path / "fifo.csv")


def test_a_monitor_iterated_to_the_end_leaves_no_file_open(tmp_path: Path) -> None:
    import gc
    import io
    import warnings

    from loopwise import TrainingMonitor

    log = tmp_path / "train.csv"
    gc.collect()  # what earlier tests left for the collector is not this monitor's to answer for
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        monitor = TrainingMonitor(range(5), log_file=log, file=io.StringIO(), system=False)
        for _ in monitor:
            monitor.log({"loss": 1.0})
        for _ in monitor:  # a second pass appends to the same file
            monitor.log({"loss": 2.0})
        del monitor
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not [m for m in leaks if "train.csv" in m], leaks
    rows = log.read_text().splitlines()
    assert rows[0] == "timestamp,step,loss,RAM_pct,VRAM_gb" and len(rows) == 11
