import csv
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
