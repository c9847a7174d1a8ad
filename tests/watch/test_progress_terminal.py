"""ProgressBar on a terminal: redraws in place, throttling, several bars keep their lines,
write() above the bar, unknown length."""

from __future__ import annotations

import io

from _fakes import Clock, Tty

from loopwise.watch.progress import ProgressBar

FULL = "█" * 10


def test_terminal_redraws_in_place_throttled() -> None:
    clock, out = Clock(), Tty()
    bar = ProgressBar("T", 10, width=10, file=out, clock=clock)
    assert bar.is_terminal
    assert out.getvalue() == "\rT:   0%|          | 0/10 [00:00<?, ?batch/s]"
    writes = out.writes
    clock.t += 0.05
    bar.update(1, {"loss": 0.5})  # within mininterval (0.1 s): nothing drawn
    assert out.writes == writes
    clock.t += 0.05
    bar.update(2, {"loss": 0.25})
    assert out.getvalue().endswith(
        "\rT:  20%|██        | 2/10 [00:00<00:00, 20.00batch/s, loss=0.2500]"
    )
    clock.t += 0.4
    bar.update(10, {"loss": 0.125})  # the last step is drawn at once
    assert bar.last_line == f"T: 100%|{FULL}| 10/10 [00:00<00:00, 20.00batch/s, loss=0.1250]"
    assert out.getvalue().endswith("\r" + bar.last_line)
    bar.finish()
    assert out.getvalue().endswith(bar.last_line + "\n")
    assert "\n" not in out.getvalue()[:-1]


def test_terminal_no_redraw_when_nothing_visible_changed() -> None:
    clock, out = Clock(), Tty()
    bar = ProgressBar("T", 10, file=out, clock=clock, mininterval=0)
    clock.t += 1
    bar.update(3, {"loss": 0.5})
    writes = out.writes
    bar.update(3, {"loss": 0.5})
    bar.update(3)
    assert out.writes == writes
    bar.finish()


def test_leave_false_clears_the_line() -> None:
    out = Tty()
    bar = ProgressBar("T", 10, file=out, clock=Clock(), leave=False)
    bar.update(5)
    bar.finish()
    assert out.getvalue().endswith("\r")
    assert not out.getvalue().endswith("\n")


def test_two_bars_on_a_terminal_keep_their_lines() -> None:
    clock, out = Clock(), Tty()
    outer = ProgressBar("Epochs", 3, width=3, file=out, clock=clock, mininterval=0)
    inner = ProgressBar("Batches", 4, width=4, file=out, clock=clock, mininterval=0, leave=False)
    top, below = outer.position, inner.position
    assert below == top + 1  # 0 and 1 unless another bar is still open elsewhere
    before = len(out.getvalue())
    clock.t += 1
    inner.update(2)
    drawn = out.getvalue()[before:]
    # moved down to its own line, drew, moved back up: the outer bar's line is untouched
    line = "Batches:  50%|██  | 2/4 [00:01<00:01, 2.00batch/s]"
    assert drawn == "\n" * below + "\r" + line + "\x1b[A" * below
    before = len(out.getvalue())
    outer.update(1)
    line = "Epochs:  33%|█  | 1/3 [00:01<00:02, 1.00batch/s]"
    assert out.getvalue()[before:] == "\n" * top + "\r" + line + "\x1b[A" * top
    inner.finish()
    outer.finish()


def test_unknown_total_on_a_terminal() -> None:
    clock, out = Clock(), Tty()
    bar = ProgressBar("S", None, file=out, clock=clock)
    clock.t += 1
    bar.update(3)
    bar.finish()
    assert out.getvalue().startswith("\rS: 0batch [00:00, ?batch/s]\r")
    assert out.getvalue().endswith("\rS: 3batch [00:01, 3.00batch/s]\n")


def test_write_prints_above_the_bar_without_breaking_it() -> None:
    clock, out = Clock(), Tty()
    bar = ProgressBar("T", 10, width=4, file=out, clock=clock, mininterval=0)
    clock.t += 1
    bar.update(3, {"loss": 0.5})
    before = len(out.getvalue())
    bar.write("epoch 1 done\x1b[31m")
    written = out.getvalue()[before:]
    # the bar's line is cleared, the text written on it, the bar redrawn on the next line
    assert written.startswith("\r" + " " * len(bar.last_line))
    assert written.endswith("\repoch 1 done\\x1b[31m\n\r" + bar.last_line)
    bar.finish()


def test_write_off_a_terminal_and_when_disabled() -> None:
    out = io.StringIO()
    bar = ProgressBar("T", 10, file=out, clock=Clock())
    bar.write("two\nlines\x07")
    assert out.getvalue() == "two\nlines\\x07\n"
    quiet = io.StringIO()
    ProgressBar("Q", 10, file=quiet, disable=True).write("still shown")
    assert quiet.getvalue() == "still shown\n"
    bar.finish()
