from pathlib import Path

from loopwise.utils.csvfile import CsvColumns, number_cell, pad, read_csv, write_csv


def test_column_names_follow_one_rule() -> None:
    cols = CsvColumns(lead=("timestamp", "step"), tail=("RAM_pct",))
    assert cols.column_for("step") == "step_metric"
    assert cols.column_for("=1+1") == "'=1+1"
    assert cols.column_for("a\nb") == "a\\x0ab"
    assert cols.add("loss") == (0, True) and cols.add("loss") == (0, False)
    assert cols.add("step") == (1, True)
    assert cols.add("=a") == (2, True)
    assert cols.add("'=a") == (3, True)  # would meet "=a": numbered, not merged
    assert cols.header == ["timestamp", "step", "loss", "step_metric", "'=a", "'=a_2",
                           "RAM_pct"]
    assert len(cols) == 7


def test_an_existing_header_is_continued_by_name() -> None:
    cols = CsvColumns(lead=("step",), columns=["loss", "step_metric"])
    assert cols.add("step") == (1, False) and cols.add("acc") == (2, True)


def test_cells_and_whole_file_writes(tmp_path: Path) -> None:
    assert [number_cell(v) for v in (1, -0.5, None, float("nan"))] == ["1.0", "-0.5", "", "nan"]
    assert pad(["t", "1", "0.5", "9"], 6, at=3) == ["t", "1", "0.5", "", "", "9"]
    write_csv(tmp_path / "a.csv", ["x", "y"], [["1", ""], ["2", "3"]])
    assert read_csv(tmp_path / "a.csv") == [["x", "y"], ["1", ""], ["2", "3"]]
