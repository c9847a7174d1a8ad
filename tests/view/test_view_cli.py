import csv
import os
import stat
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
    assert out[2].startswith("beta") and "finished" in out[2] and " 0.25 " in out[2]
    assert out[3].startswith("alpha")


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


def test_export_refuses_a_symlink_or_a_fifo(two_runs: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pointee = tmp_path / "precious.csv"
    pointee.write_text("mine")
    link = tmp_path / "out.csv"
    link.symlink_to(pointee)
    assert main(["export", str(two_runs / "alpha"), str(link)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"loopwise export: error: refusing to write {link}: it is a symbolic link" in err
    assert link.is_symlink() and pointee.read_text() == "mine"
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert main(["export", str(two_runs / "alpha"), str(fifo)]) == 2
    assert "it is a FIFO (named pipe)" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_runs_lists_a_corrupt_folder_with_its_reason_and_every_other_run(
        two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (two_runs / "alpha" / "run.json").write_text("[]")
    assert main(["runs", str(two_runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4  # header, rule, beta; the unreadable run under the table
    [beta] = [line for line in out if line.startswith("beta")]
    [alpha] = [line for line in out if line.startswith("alpha")]
    assert "finished" in beta and " 0.25 " in beta
    assert alpha.split()[1] == "corrupt"
    assert alpha.endswith(f"{two_runs / 'alpha' / 'run.json'} is corrupt (it holds a JSON array,"
                          " not an object); loopwise cannot read this run's status; restore it "
                          "from a backup, or move the run folder out of the runs root")


@pytest.mark.parametrize(("file", "content", "reason"), [
    ("run.json", "{", "not JSON: Expecting property name enclosed in double quotes"),
    ("run.json", "3", "it holds a JSON number, not an object"),
    ("config.json", "", "not JSON: Expecting value at line 1 column 1"),
    ("store.sqlite", "garbage" * 200, "SQLite: file is not a database"),
])
def test_show_on_a_corrupt_file_is_one_line_naming_it(
        two_runs: Path, capsys: pytest.CaptureFixture[str], file: str, content: str,
        reason: str) -> None:
    (two_runs / "alpha" / file).write_text(content)
    assert main(["show", str(two_runs / "alpha")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"loopwise show: error: {two_runs / 'alpha' / file} is corrupt ({reason}")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_names_and_arguments_never_reach_the_terminal_raw(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "\x1b]0;owned\x07loss"
    with Run.create(tmp_path / "runs", "esc", config={"note": "\x1b[2J"}) as run:
        run.log_scalars({evil: 1.0}, step=1)
        run.log_event("spike", "bad \x1b[31mred\x1b[0m", level="warning")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert main(["show", str(run.path)]) == 0
    assert main(["show", str(tmp_path / "nope\x1b[2J")]) == 2
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
    assert "best.\\x1b]0;owned\\x07loss" in captured.out  # shown, escaped
    assert "note=\\x1b[2J" in captured.out and "bad \\x1b[31mred\\x1b[0m" in captured.out
    assert "nope\\x1b[2J: not a loopwise run folder" in captured.err and "\x1b" not in captured.err


def test_a_nan_system_sample_breaks_no_view(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with Run.create(tmp_path / "runs", "n") as run:
        run.log_scalars({"loss": 1.0}, step=1)
        run.log_system({"cpu_pct": float("nan"), "ram_pct": 5.0})
        run.log_system({"cpu_pct": 10.0, "ram_pct": 6.0})
    root = ["--root", str(tmp_path / "runs")]
    assert main(["report", "n", *root]) == 0
    assert main(["doctor", "n", *root]) == 0
    assert main(["show", "n", *root]) == 0
    assert "Traceback" not in capsys.readouterr().err
    page = (tmp_path / "runs" / "n" / "report.html").read_text()
    assert '"cpu_pct":{"times":[' in page and '"values":[null,10.0]' in page
