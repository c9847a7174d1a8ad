"""loopwise.ProgressBar: exact lines with a fake clock and stream, terminal and non-terminal
output, throttling, several bars, threads, errors."""

from __future__ import annotations

import io
import re
import threading

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
