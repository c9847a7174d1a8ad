"""The progress line as a pure function of a BarState: the reference format, style options,
unknown length, narrow terminals, printable names."""

from __future__ import annotations

import pytest
import torch

from loopwise.watch.bar_line import BarState, BarStyle, format_postfix, render_line

FULL = "█" * 10


def test_reference_line_format() -> None:
    state = BarState("Epoch 1/10 (Training)", 100, 100, 15.5,
                     {"loss": 2.3089, "accuracy": 0.125}, BarStyle(width=10))
    assert render_line(state) == (
        f"Epoch 1/10 (Training): 100%|{FULL}| 100/100 [00:15<00:00, 6.45batch/s, "
        "loss=2.3089, accuracy=12.50%]"
    )


def test_style_options_and_formats() -> None:
    metrics = {"val_acc": 0.5, "lr": 0.00012345, "top5_ACC": 1.0, "grad_accum_steps": 4}
    no_eta = render_line(BarState("Train", 25, 100, 50.0, metrics,
                                  BarStyle(width=4, show_eta=False)))
    assert no_eta == (
        "Train:  25%|█   | 25/100 [00:50, 0.50batch/s, val_acc=50.00%, lr=1.2345e-04, "
        "top5_ACC=100.00%, grad_accum_steps=4]"
    )
    bare = render_line(BarState("Train", 25, 100, 50.0, None,
                                BarStyle(width=4, show_rate=False, show_eta=False)))
    assert bare == "Train:  25%|█   | 25/100 [00:50]"
    start = render_line(BarState("T", 0, 10, 0.0, None, BarStyle(width=2)))
    assert start == "T:   0%|  | 0/10 [00:00<?, ?batch/s]"
    ascii_line = render_line(BarState("T", 5, 10, 1.0, None, BarStyle(width=4, ascii=True)))
    assert ascii_line.startswith("T:  50%|##  |")


def test_unknown_length_shows_count_and_rate() -> None:
    state = BarState("Stream", 37, None, 5.0, {"loss": 0.231})
    assert render_line(state) == "Stream: 37batch [00:05, 7.40batch/s, loss=0.2310]"
    quiet = BarState("", 37, None, 5.0, None, BarStyle(show_rate=False))
    assert render_line(quiet) == "37batch [00:05]"


def test_postfix_reads_tensors_and_spells_nan() -> None:
    assert format_postfix({"loss": float("nan")}) == "loss=nan"
    assert format_postfix({"loss": torch.tensor(0.5)}) == "loss=0.5000"
    assert format_postfix(None) == ""
    with pytest.raises(TypeError, match="metric 'loss' must be a number or a one-element tensor"):
        format_postfix({"loss": torch.tensor([1.0, 2.0])})


def test_narrow_terminal_shrinks_the_bar_not_the_numbers() -> None:
    state = BarState("Epoch 1/10 (Training)", 50, 100, 10.0, {"loss": 1.0}, BarStyle(width=70))
    line = render_line(state, ncols=100)
    assert len(line) <= 100
    assert line.endswith("50/100 [00:10<00:10, 5.00batch/s, loss=1.0000]")


def test_desc_and_names_are_printable() -> None:
    line = render_line(BarState("ep\x1b[2J", 1, 2, 1.0, {"l\x07": 1.0}, BarStyle(width=2)))
    assert "\x1b" not in line and "\x07" not in line
    assert line.startswith("ep\\x1b[2J:  50%") and "l\\x07=1.0000" in line
