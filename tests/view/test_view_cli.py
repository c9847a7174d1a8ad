import csv
import subprocess
import sys
from pathlib import Path

import pytest

from loopwise.cli import main
from loopwise.record import Run


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    for name, loss in (("alpha", 1.0), ("beta", 0.25)):
        with Run.create(tmp_path / "runs", name, config={"lr": 0.1}) as run:
            run.log_scalars({"loss": loss}, step=1)
            run.log_event("spike", "loss spiked", level="warning")
    return tmp_path / "runs"


def test_runs_lists_newest_first(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(two_runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("name")
    assert out[1].startswith("beta") and "finished" in out[1] and "loss=0.25" in out[1]
    assert out[2].startswith("alpha")


def test_show_and_export(two_runs: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(two_runs / "alpha")]) == 0
    text = capsys.readouterr().out
    assert "alpha" in text and "lr=0.1" in text and "[warning] spike: loss spiked" in text
    assert main(["export", str(two_runs / "alpha"), str(tmp_path / "a.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert rows == [{"step": "1", "wall_time": rows[0]["wall_time"], "loss": "1.0"}]


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path / "nope")]) == 2
    assert "not a loopwise run folder" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "missing")]) == 2
    assert "no runs folder at" in capsys.readouterr().err


def test_console_script_entry_point(two_runs: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "loopwise", "runs", str(two_runs)],
                          capture_output=True, text=True, check=True)
    assert "beta" in proc.stdout
