import json
import math

from loopwise.utils.jsonsafe import float_or_nan, json_safe


def test_non_finite_floats_are_null_everywhere_in_the_value() -> None:
    value = {"a": math.nan, "b": [math.inf, 1.0, (-math.inf, 2)], 3: {"c": 0.5}}
    assert json.dumps(json_safe(value), allow_nan=False) == (
        '{"a": null, "b": [null, 1.0, [null, 2]], "3": {"c": 0.5}}')


def test_float_or_nan_reads_null_back_as_nan() -> None:
    assert math.isnan(float_or_nan(None)) and float_or_nan(2) == 2.0
