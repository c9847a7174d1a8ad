"""ProgressBar's argument checks: each bad argument raises at the call with a message that says
what was wrong, records nothing, and leaves the bar usable."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from _fakes import Clock, Tty

from loopwise.watch.progress import ProgressBar


def test_update_errors() -> None:
    bar = ProgressBar("E", 5, file=io.StringIO(), clock=Clock())
    with pytest.raises(ValueError, match=r"between 0 and total=5 for ProgressBar 'E', got 6"):
        bar.update(6)
    with pytest.raises(ValueError, match=r"between 0 and total=5 for ProgressBar 'E', got -1"):
        bar.update(-1)
    with pytest.raises(ValueError, match=r"step must be an int >= 0 \(steps done\), got -2"):
        bar.update(np.int64(-2))
    with pytest.raises(TypeError, match=r"step must be an int \(steps done\), got str"):
        bar.update("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step must be an int"):
        bar.update(True)
    with pytest.raises(TypeError, match="metrics must be a mapping of name -> number, got list"):
        bar.update(5, [0.5])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metric 'loss' must be a number or a one-element tensor"):
        bar.update(5, {"loss": "high"})  # type: ignore[dict-item]
    assert bar.n == 0
    bar.finish()  # nothing bad was stored: finish() draws the final line and does not raise
    with pytest.raises(RuntimeError, match="ProgressBar 'E' is finished; make a new bar"):
        bar.update(1)
    with pytest.raises(RuntimeError, match="ProgressBar 'E' is finished; make a new bar"):
        bar.advance()


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        ([1, 2], TypeError, "metrics must be a mapping of name -> number, got list"),
        ({"loss": "abc"}, TypeError,
         "metric 'loss' must be a number or a one-element tensor, got str 'abc'"),
        ({"loss": None}, TypeError, "metric 'loss' must be a number .*got NoneType"),
        ({"ok": True}, TypeError, "metric 'ok' must be a number .*got bool"),
        ({3: 0.5}, TypeError, r"a metric name must be a string, got int \(3\)"),
        ({"": 0.5}, ValueError, "a metric name must be a non-empty string"),
        ({"loss": torch.ones(2)}, ValueError,
         r"metric 'loss' is a tensor of shape \[2\]; pass a one-element tensor"),
        ({"m": torch.tensor(True)}, TypeError, "metric 'm' is a torch.bool tensor"),
        ({"m": torch.tensor(1j)}, TypeError, "metric 'm' is a torch.complex64 tensor"),
    ],
)
def test_bad_metrics_raise_at_the_call_even_between_redraws(
        metrics: Any, error: type[Exception], match: str) -> None:
    """The defect: on the non-drawing path a bad mapping was stored, a later draw failed,
    finish() raised and the dead bar kept its line on a terminal."""
    clock, out = Clock(), Tty()
    bar = ProgressBar("T", 10, width=4, file=out, clock=clock)  # 0.1 s between redraws
    with pytest.raises(error, match=match):
        bar.update(3, metrics)
    with pytest.raises(error, match=match):
        bar.advance(1, metrics)
    assert bar.n == 0
    bar.update(4, {"loss": 0.5})  # still usable
    clock.t += 1
    bar.finish()
    assert out.getvalue().endswith("4/10 [00:01<00:01, 4.00batch/s, loss=0.5000]\n")


def test_good_metrics_pass() -> None:
    bar = ProgressBar("T", 10, file=io.StringIO(), clock=Clock())
    bar.update(1, {"a": 1, "b": np.float32(0.5), "c": np.int64(3), "d": torch.tensor([0.5]),
                   "e": float("nan")})
    bar.finish()
    assert bar.last_line.endswith("a=1, b=0.5000, c=3, d=0.5000, e=nan]")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"total": 0}, ValueError, r"total must be an int >= 1 or None \(the number of steps; "),
        ({"total": 2.5}, TypeError, "total must be an int or None .*, got float"),
        ({"total": True}, TypeError, "total must be an int or None .*, got bool"),
        ({"width": 0}, ValueError, "width must be an int >= 1"),
        ({"show_rate": 1}, TypeError, "show_rate must be True or False"),
        ({"show_eta": None}, TypeError, "show_eta must be True or False"),
        ({"disable": "yes"}, TypeError, "disable must be True or False, got 'yes'"),
        ({"file": object()}, TypeError, "file must be a text stream with write"),
        ({"clock": 3}, TypeError, "clock must be a callable"),
        ({"mininterval": -1}, ValueError, r"mininterval must be a finite number >= 0 \(seconds"),
        ({"position": -2}, ValueError, "position must be an int >= 0"),
    ],
)
def test_constructor_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args = {"total": 10, **kwargs}
    with pytest.raises(error, match=match):
        ProgressBar("x", **args)


def test_desc_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="desc must be a string, got int"):
        ProgressBar(3, 10)  # type: ignore[arg-type]


def test_method_argument_errors() -> None:
    bar = ProgressBar("A", 10, file=io.StringIO(), clock=Clock())
    with pytest.raises(ValueError, match=r"n must be an int >= 0 \(steps to add\), got -1"):
        bar.advance(-1)
    with pytest.raises(TypeError, match=r"n must be an int \(steps to add\), got float"):
        bar.advance(1.5)  # type: ignore[arg-type]
    bar.advance(9)
    with pytest.raises(ValueError, match=r"advance\(2\) would take ProgressBar 'A' to 11 steps, "
                                         "beyond total=10"):
        bar.advance(2)
    assert bar.n == 9
    with pytest.raises(ValueError, match="width must be an int >= 1 .*got 0"):
        bar.set_width(0)
    with pytest.raises(TypeError, match="show must be True or False, got 'no'"):
        bar.show_rate("no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="show must be True or False, got 0"):
        bar.show_eta(0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a string, got int"):
        bar.write(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step must be >= 0 for ProgressBar 'U', got -1"):
        ProgressBar("U", None, file=io.StringIO()).update(-1)
    bar.finish()


@pytest.mark.parametrize("make_out", [io.StringIO, Tty])
def test_a_step_beyond_total_raises_after_the_last_step_too(make_out: type[io.StringIO]) -> None:
    bar = ProgressBar("B", 3, file=make_out(), clock=Clock())
    bar.update(3)
    with pytest.raises(ValueError, match="between 0 and total=3 for ProgressBar 'B', got 4"):
        bar.update(4)
    bar.finish()
