import pytest

from loopwise.utils.table import render_table


def test_columns_rule_aligns_and_escapes() -> None:
    text = render_table([["loss\x1b[2J", 1], ["acc", 12.5]], header=["metric", "n"], align="lr")
    assert text.splitlines() == [
        "metric          n",
        "-----------  ----",
        "loss\\x1b[2J     1",
        "acc          12.5",
    ]


def test_frame_rule_min_widths_and_no_header() -> None:
    assert render_table([["a", "b"]], header=["x", "yy"], rule="frame").splitlines() == [
        "x  yy", "=====", "a  b", "====="]
    assert render_table([[3, "warning", "spike", "m"]], align="r", min_widths=(4, 8),
                        rule=None) == "   3  warning   spike  m"
    assert render_table([]) == ""


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rule": "dots"}, "rule must be 'columns', 'frame' or None"),
    ({"gap": 0}, "gap must be an int >= 1"),
    ({"align": "lc"}, "align takes one letter per column, 'l' or 'r'"),
])
def test_bad_options_are_clear_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_table([["a"]], **kwargs)  # type: ignore[arg-type]


def test_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells, the table has 2 columns"):
        render_table([["a", "b"], ["c"]])


def test_a_table_fits_a_width_cutting_long_names_in_the_middle() -> None:
    from loopwise.utils.table import fit_widths, shorten

    assert shorten("optimizer.weight_decay", 9) == "opti\u2026ecay"
    assert shorten("short", 9) == "short"
    rows = [["run-1", "0.001", "0.25"], ["a-very-long-run-name-indeed", "0.01", "0.5"]]
    text = render_table(rows, header=["name", "optimizer.weight_decay", "val_loss"], width=40)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 40
    assert "0.001" in lines[2] and "0.25" in lines[2]  # values keep their width
    assert "\u2026" in lines[0]  # the long header is cut, not the numbers
    narrow = render_table(rows, header=["name", "optimizer.weight_decay", "val_loss"], width=20)
    assert narrow.splitlines()[-1] == "(2 more columns do not fit the 20 columns)"
    assert fit_widths([10, 10], 100) == ([10, 10], 0)
    styled = render_table([["a", "1"]], header=["k", "v"], style=lambda r, c, t: f"<{t}>")
    assert styled.splitlines()[2] == "<a>  <1>"


def test_a_bad_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"width must be an int >= 1 \(terminal columns\), got 0"):
        render_table([["a"]], width=0)
