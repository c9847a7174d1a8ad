"""TrainingMonitor's bar: ProgressBar's whole lines off a terminal, tqdm's bar in place on one."""

from __future__ import annotations

import io

from loopwise import TrainingMonitor


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(out: io.StringIO, n: int, **kw: object) -> None:
    m = TrainingMonitor(range(n), desc="Training", file=out, system=False, record=False,
                        mininterval=1e-9, **kw)  # type: ignore[arg-type]
    for _ in m:
        m.log({"loss": 0.5})


def test_off_a_terminal_the_monitor_writes_whole_lines_one_per_tenth() -> None:
    out = io.StringIO()
    _run(out, 20)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text  # no redraws into a log file
    lines = text.splitlines()
    assert [line.split("|")[0] for line in lines] == [
        f"Training: {p:3d}%" for p in range(10, 101, 10)]
    assert all(", loss=0.5000, wait=" in line and "batch/s" in line for line in lines)
    assert lines[-1].startswith("Training: 100%|██████████| 20/20 [")


def test_off_a_terminal_an_unknown_length_is_a_count_and_empty_is_zero() -> None:
    out = io.StringIO()
    m = TrainingMonitor(iter(range(3)), desc="Eval", file=out, system=False, record=False)
    for _ in m:
        m.log({"acc": 1.0})
    assert out.getvalue().startswith("Eval: 3batch [00:00, ")
    out = io.StringIO()
    _run(out, 0)
    assert out.getvalue().startswith("Training: 0batch [00:00, ")


def test_on_a_terminal_the_monitor_draws_tqdm_s_bar_in_place() -> None:
    out = _Terminal()
    _run(out, 4)
    text = out.getvalue()
    assert text.startswith("\rTraining:   0%|")  # tqdm's bar, redrawn with carriage returns
    final = text.rstrip("\n").rsplit("\r", 1)[1]
    assert final.startswith("Training: 100%|") and "| 4/4 [" in final
    assert ", loss=0.5000, wait=" in final
