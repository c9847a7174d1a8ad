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
