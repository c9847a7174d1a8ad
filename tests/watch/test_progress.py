"""loopwise.ProgressBar: exact lines with a fake clock and stream, terminal and non-terminal
output, throttling, several bars, threads, errors; on a terminal: redraws in place, several bars
keep their lines, write() above the bar, unknown length; its argument checks: each bad argument
raises at the call with a message that says what was wrong, records nothing, and leaves the bar
usable."""

from __future__ import annotations

import io
import json
import re
import threading
from typing import Any

import numpy as np
import pytest
import torch
from _fakes import Clock, Tty

from loopwise.watch.progress import ProgressBar

FULL = "█" * 10


def test_not_a_terminal_writes_whole_lines_every_tenth_and_the_final_line() -> None:
    clock, out = Clock(), io.StringIO()
    with ProgressBar("Epoch 1/10 (Training)", 100, width=10, file=out, clock=clock) as bar:
        assert not bar.is_terminal
        for step in range(1, 101):
            clock.t += 0.155
            bar.update(step, {"loss": 2.3089, "accuracy": 0.125})
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 10
    assert [re.search(r"\| (\d+)/100", x).group(1) for x in lines] == [  # type: ignore[union-attr]
        str(n) for n in range(10, 101, 10)
    ]
    assert lines[0] == (
        "Epoch 1/10 (Training):  10%|█         | 10/100 [00:01<00:13, 6.45batch/s, "
        "loss=2.3089, accuracy=12.50%]"
    )
    assert lines[-1] == (
        f"Epoch 1/10 (Training): 100%|{FULL}| 100/100 [00:15<00:00, 6.45batch/s, "
        "loss=2.3089, accuracy=12.50%]"
    )


def test_not_a_terminal_a_fast_phase_writes_only_its_final_line() -> None:
    """A phase under a second (a 15 ms epoch of a tiny model) leaves one line in a CI log, not
    ten: a tenth's line waits one second after the last line (or the start)."""
    clock, out = Clock(), io.StringIO()
    with ProgressBar("Epoch 1/10 (Training)", 100, width=10, file=out, clock=clock) as bar:
        for step in range(1, 101):
            clock.t += 0.001
            bar.update(step, {"loss": 0.5})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Epoch 1/10 (Training): 100%|{FULL}| 100/100 [00:00<00:00, 1000.00batch/s, loss=0.5000")


def test_not_a_terminal_tenths_come_at_most_one_line_a_second() -> None:
    clock, out = Clock(), io.StringIO()
    with ProgressBar("P", 100, width=4, file=out, clock=clock) as bar:
        for step in range(1, 101):  # 6.25 s: a tenth every 0.625 s
            clock.t += 0.0625
            bar.update(step)
    steps = [int(re.search(r"\| (\d+)/100", x).group(1)) for x in out.getvalue().splitlines()]  # type: ignore[union-attr]
    assert steps == [20, 40, 60, 80, 100]  # 10 % came 0.625 s in, 30 % 0.625 s after 20 %...


def test_not_a_terminal_line_gap_sets_the_least_time_between_tenths() -> None:
    clock, out = Clock(), io.StringIO()
    with ProgressBar("P", 100, width=4, file=out, clock=clock, line_gap=0) as bar:
        for step in range(1, 101):
            clock.t += 0.001
            bar.update(step)
    assert len(out.getvalue().splitlines()) == 10  # every tenth, however fast
    out = io.StringIO()
    with ProgressBar("P", 100, width=4, file=out, clock=clock, mininterval=0.2) as bar:
        for step in range(1, 101):  # a shorter mininterval also shortens the gap
            clock.t += 0.01
            bar.update(step)
    steps = [int(re.search(r"\| (\d+)/100", x).group(1)) for x in out.getvalue().splitlines()]  # type: ignore[union-attr]
    assert steps == [20, 40, 60, 80, 100]


def test_not_a_terminal_slow_progress_writes_every_few_seconds() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("Slow", 1000, width=5, file=out, clock=clock)
    for step in range(1, 31):  # 3 % of the total, one step per second
        clock.t += 1.0
        bar.update(step)
    steps = [int(re.search(r"\| (\d+)/1000", x).group(1)) for x in out.getvalue().splitlines()]  # type: ignore[union-attr]
    assert steps == [5, 10, 15, 20, 25, 30]
    clock.t += 0.5
    bar.update(31)
    bar.finish()  # stopped early: the final line shows where it stopped
    last = out.getvalue().splitlines()[-1]
    assert last == "Slow:   3%|▏    | 31/1000 [00:30<15:53, 1.02batch/s]"
    bar.finish()
    assert len(out.getvalue().splitlines()) == 7


def test_final_line_is_not_repeated() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("X", 4, width=4, file=out, clock=clock)
    for step in range(1, 5):
        clock.t += 1
        bar.update(step, {"loss": 1.0})
    clock.t += 10
    bar.finish()
    assert out.getvalue().count("4/4") == 1


def test_updates_from_threads_never_interleave() -> None:
    out = io.StringIO()
    bars = [ProgressBar(f"bar{i}", 8000, width=8, file=out, mininterval=0) for i in range(2)]
    lock = threading.Lock()
    counter = [0, 0]

    def work(i: int) -> None:
        for _ in range(2000):
            with lock:
                counter[i % 2] += 1
                step = counter[i % 2]
            bars[i % 2].update(step, {"loss": 0.5, "acc": 0.25})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for bar in bars:
        bar.finish()
    pattern = re.compile(
        r"^bar[01]: +\d+%\|[█▏▎▍▌▋▊▉ ]{8}\| \d+/8000 \[[0-9:]+<[0-9:?]+, [^,]+, "
        r"loss=0\.5000, acc=25\.00%\]$"
    )
    lines = out.getvalue().splitlines()
    assert lines, "nothing written"
    bad = [x for x in lines if not pattern.match(x)]
    assert not bad, bad[:3]
    assert sum(line.startswith("bar0") and "4000/8000" in line for line in lines) >= 1


def test_update_accepts_numpy_steps_and_tensor_metrics() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("N", 2, width=2, file=out, clock=clock)
    clock.t += 1
    bar.update(np.int64(2), {"loss": torch.tensor(0.25)})
    assert bar.n == 2
    assert out.getvalue() == "N: 100%|██| 2/2 [00:01<00:00, 2.00batch/s, loss=0.2500]\n"


def test_a_numpy_total_and_width_are_kept_as_plain_ints() -> None:
    bar = ProgressBar("N", np.int64(4), width=np.int32(3), file=io.StringIO(), clock=Clock())
    assert type(bar.total) is int and bar.total == 4
    state = bar.state_dict()
    assert type(state["total"]) is int
    json.dumps(state)  # a checkpoint's JSON side can hold it


def test_state_dict_round_trip() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("S", 10, width=2, file=out, clock=clock)
    clock.t += 4
    bar.update(4)
    state = bar.state_dict()
    assert state == {"n": 4, "total": 10, "elapsed": 4.0}
    again = ProgressBar("S", 10, width=2, file=out, clock=clock)
    again.load_state_dict(state)
    clock.t += 1
    again.finish()
    assert out.getvalue().splitlines()[-1] == "S:  40%|▊ | 4/10 [00:05<00:07, 0.80batch/s]"
    with pytest.raises(ValueError, match="state is for total=10, this bar has 3"):
        ProgressBar("S", 3, file=out).load_state_dict(state)
    with pytest.raises(KeyError, match="missing"):
        again.load_state_dict({"n": 1})


def test_finish_closes_the_line_even_when_a_metric_can_no_longer_be_shown() -> None:
    clock, out = Clock(), Tty()
    metrics: dict[str, object] = {"loss": 0.5}
    bar = ProgressBar("T", 10, width=4, file=out, clock=clock, mininterval=0)
    clock.t += 1
    bar.update(3, metrics)  # type: ignore[arg-type]
    metrics["loss"] = "changed after update()"
    with pytest.raises(TypeError, match="metric 'loss' must be a number"):
        bar.finish()
    assert bar.finished
    final = out.getvalue().rsplit("\r", 1)[1]  # tqdm pads with spaces over the longer line
    assert final.rstrip(" \n") == "T:  30%|█▏  | 3/10 [00:01<00:02, 3.00batch/s]"
    assert final.endswith("\n")
    bar.finish()  # closed: a no-op


def test_advance_from_threads_counts_every_call() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("A", 8000, width=8, file=out, clock=clock, mininterval=0)

    def work() -> None:
        for _ in range(2000):
            bar.advance(1, {"loss": 0.5})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bar.n == 8000
    bar.finish()
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"A: 100%|{'█' * 8}| 8000/8000 [00:00<?, ?batch/s, loss=0.5000]"
    counts = [int(re.search(r"\| (\d+)/8000", x).group(1)) for x in lines]  # type: ignore[union-attr]
    assert counts == sorted(counts)  # drawn under the lock: never out of order


def test_advance_steps_and_metrics() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("A", 4, width=4, file=out, clock=clock)
    clock.t += 1
    bar.advance()
    bar.advance(2, {"loss": 0.25})
    bar.advance(0, {"loss": 0.125})  # only the metrics
    assert bar.n == 3
    clock.t += 1
    bar.advance()
    assert out.getvalue().splitlines()[-1] == (
        "A: 100%|████| 4/4 [00:02<00:00, 2.00batch/s, loss=0.1250]")


def test_set_width_show_rate_show_eta() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("W", 10, file=out, clock=clock, mininterval=0)
    bar.set_width(4)
    bar.show_rate(False)
    clock.t += 2
    bar.update(5)
    assert bar.last_line == "W:  50%|██  | 5/10 [00:02<00:02]"
    bar.show_eta(False)
    bar.show_rate()
    bar.update(6)
    assert bar.last_line == "W:  60%|██▍ | 6/10 [00:02, 3.00batch/s]"
    assert (bar.style.width, bar.style.show_rate, bar.style.show_eta) == (4, True, False)
    bar.finish()


def test_unknown_total_shows_count_and_rate() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar("Stream", None, file=out, clock=clock)
    for step in range(1, 21):  # one step every 0.5 s: a line every 5 s
        clock.t += 0.5
        bar.update(step, {"loss": 0.5})
    bar.advance(17)
    bar.finish()
    assert out.getvalue().splitlines() == [
        "Stream: 10batch [00:05, 2.00batch/s, loss=0.5000]",
        "Stream: 20batch [00:10, 2.00batch/s, loss=0.5000]",
        "Stream: 37batch [00:10, 3.70batch/s, loss=0.5000]",
    ]
    assert bar.total is None and bar.state_dict()["total"] is None


@pytest.mark.parametrize("make_out", [io.StringIO, Tty])
def test_disable_prints_nothing_but_checks_arguments(make_out: type[io.StringIO]) -> None:
    clock, out = Clock(), make_out()
    with ProgressBar("D", 5, file=out, clock=clock, disable=True) as bar:
        for step in range(1, 6):
            clock.t += 10
            bar.update(step, {"loss": 0.5})
        with pytest.raises(TypeError, match="metrics must be a mapping"):
            bar.update(5, [1])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="between 0 and total=5"):
            bar.update(6)
    assert out.getvalue() == ""
    assert bar.n == 5 and bar.finished


# --- on a terminal ------------------------------------------------------------------------

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


# --- argument checks ----------------------------------------------------------------------

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
        ({"line_gap": -0.5}, ValueError,
         r"line_gap must be a finite number >= 0 \(seconds between two lines off a terminal"),
        ({"line_gap": "1"}, TypeError, r"line_gap must be a (finite )?number"),
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
