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


def test_a_column_of_numbers_is_written_as_number_cell_writes_each() -> None:
    import math

    import numpy as np

    from loopwise.utils.csvfile import int_cells, number_cell, number_cells

    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.standard_normal(5_000) * 10.0 ** rng.integers(-30, 30, 5_000),
        [0.0, -0.0, 1.0, 0.1, 1e16, 1e-5, 5e-324, 1.7976931348623157e308, math.nan, math.inf,
         -math.inf, 123456.0, 9.99e-5, 1e-4, -2.5e-7, 1e-10, 1e15, 9999999999999998.0],
        # every exponent, subnormals and NaN payloads: random bit patterns
        rng.integers(0, 2**64, 200_000, dtype=np.uint64, endpoint=False).view(np.float64)])
    cells = number_cells(values)
    assert cells == [number_cell(v) for v in values]
    assert [float(c) for c in cells if c not in ("nan",)] == [v for v in values.tolist()
                                                             if not math.isnan(v)]
    present = rng.random(len(values)) < 0.3  # sparse, then mostly full
    for mask in (present, ~present):
        assert number_cells(values, mask) == [number_cell(v) if m else ""
                                              for v, m in zip(values, mask, strict=True)]
    assert int_cells(np.array([0, -3, 2**62, -2**63])) == ["0", "-3", str(2**62), str(-2**63)]
    assert number_cells(np.array([])) == [] and int_cells(np.array([], dtype=np.int64)) == []


def test_a_file_written_by_columns_is_the_file_written_by_rows(tmp_path: Path) -> None:
    from loopwise.utils.csvfile import write_csv_columns

    header = ["step", "=x", 'a "quoted", name']
    rows = [["1", "0.5", ""], ["2", "", "-1e-07"], ["3", "inf", "nan"]]
    write_csv(tmp_path / "rows.csv", header, rows)
    write_csv_columns(tmp_path / "cols.csv", header,
                      [[[r[i] for r in rows[:2]] for i in range(3)],
                       [[r[i] for r in rows[2:]] for i in range(3)], [[], [], []]])
    assert (tmp_path / "cols.csv").read_bytes() == (tmp_path / "rows.csv").read_bytes()
    assert read_csv(tmp_path / "cols.csv") == [header, *rows]
