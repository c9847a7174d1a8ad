"""The run table of ``loopwise runs`` and ``loopwise compare``: which values it holds (final,
best in each metric's direction, none for lr), sorting, --where, --columns, --limit, the
terminal width, colours only on a terminal, CSV/JSON for scripts; a broken pipe; export's
options in any order."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from _sweep import make_sweep, sweep_config, sweep_metrics
from _view_kit import SRC

from loopwise.cli import main
from loopwise.view.runs_table import RunTable, final_and_best, metric_order

ENV = {**os.environ, "PYTHONPATH": SRC, "NO_COLOR": ""}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "runs"
    make_sweep(root, 8)
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopwise", *args], env=ENV,
                          capture_output=True, text=True, timeout=60)


def out_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_rows_hold_final_and_best_in_each_metrics_direction(sweep: Path) -> None:
    rows = {r.name: r for r in RunTable(sweep).rows()}
    row = rows["sweep-0005"]
    assert row.config["optimizer.lr"] == sweep_config(5)["optimizer"]["lr"]  # flattened
    val_loss = [sweep_metrics(sweep_config(5), e)[0] for e in (1, 2, 3)]
    assert row.best["epoch/val_loss"] == pytest.approx(min(val_loss))
    assert row.best["epoch/val_acc"] == pytest.approx(max(1 / (1 + v) for v in val_loss))
    assert row.final["lr"] == sweep_config(5)["optimizer"]["lr"]
    assert "lr" not in row.best  # lr is watched, not optimised: no "best lr"
    assert row.steps == 20 and row.status == "finished"
    assert final_and_best("lr", [0.1, 0.01]) == (0.01, None)
    assert final_and_best("val_acc", [0.5, float("nan"), 0.9, 0.7]) == (0.7, 0.9)
    assert metric_order(["loss", "epoch", "lr", "epoch/val_loss", "val_acc"]) == [
        "epoch/val_loss", "val_acc", "loss", "lr"]


def test_sort_where_columns_limit(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = out_of(capsys, "runs", str(sweep), "--format", "json", "--sort",
                  "best.epoch/val_loss", "--columns", "optimizer.lr,best.epoch/val_loss")
    rows = json.loads(text)
    losses = [r["best.epoch/val_loss"] for r in rows]
    assert losses == sorted(losses) and len(rows) == 8
    assert list(rows[0]) == ["name", "optimizer.lr", "best.epoch/val_loss"]
    rows = json.loads(out_of(capsys, "runs", str(sweep), "--format", "json", "--sort", "lr",
                             "--desc", "--limit", "3", "--columns", "lr"))
    lrs = sorted((sweep_config(i)["optimizer"]["lr"] for i in range(8)), reverse=True)
    assert [r["lr"] for r in rows] == lrs[:3]  # bare lr: the config's (optimizer.lr is not)
    rows = json.loads(out_of(capsys, "runs", str(sweep), "--format", "json", "--where",
                             "optimizer.name == adam and not (model.depth > 5) or seed == 7",
                             "--columns", "seed"))
    expected = [i for i in range(8) if (sweep_config(i)["optimizer"]["name"] == "adam"
                and sweep_config(i)["model"]["depth"] <= 5) or i == 7]
    assert sorted(r["seed"] for r in rows) == expected
    assert main(["runs", str(sweep), "--where", "seed <", "--format", "json"]) == 2
    assert capsys.readouterr().err == (
        "loopwise runs: error: 'seed <' ends where a key, a number or a string was expected\n")
    assert main(["runs", str(sweep), "--sort", "val_acc"]) == 2
    assert "did you mean epoch/val_acc" in capsys.readouterr().err
    assert main(["runs", str(sweep), "--columns", "nope"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err


def test_csv_for_scripts(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = out_of(capsys, "runs", str(sweep), "--format", "csv", "--sort", "seed",
                  "--columns", "status,seed,optimizer.name,best.epoch/val_acc")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["seed"]) for r in rows] == list(range(8))
    assert rows[0]["status"] == "finished" and rows[0]["optimizer.name"] == "adam"
    assert 0 < float(rows[3]["best.epoch/val_acc"]) < 1


def test_default_table_validation_first_and_differing_config(
        sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = out_of(capsys, "runs", str(sweep)).splitlines()[0].split()
    assert header[:2] == ["name", "status"]
    assert "optimizer.lr" in header and "best.lr" not in header and "final.lr" in header
    assert header.index("best.epoch/val_loss") < header.index("best.loss")


def test_widths_fit_the_terminal_and_cut_long_names_in_the_middle(
        sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = out_of(capsys, "runs", str(sweep), "--width", "80").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "opti\u2026" in lines[0]  # optimizer.weight_decay, cut in the middle
    assert lines[-1].endswith("more columns do not fit the 80 columns)")
    wide = out_of(capsys, "runs", str(sweep)).splitlines()  # not a terminal: no limit
    assert max(len(line) for line in wide) > 150 and "\u2026" not in wide[0]


def test_colour_on_a_terminal_plain_when_piped(sweep: Path) -> None:
    piped = run_cli("runs", str(sweep))
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout
    leader, follower = pty.openpty()
    os.set_blocking(leader, True)
    proc = subprocess.Popen([sys.executable, "-m", "loopwise", "runs", str(sweep)],
                            env={**ENV, "COLUMNS": "100", "NO_COLOR": ""}, stdout=follower,
                            stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = b"".join(chunks).decode()
    assert "\x1b[32mfinished\x1b[0m" in text  # status in green
    assert "\x1b[1;32m" in text  # each metric's best value in bold green
    plain = [line for line in text.replace("\x1b[0m", "").splitlines() if line]
    import re

    visible = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in plain]
    assert max(len(line) for line in visible) <= 100  # the terminal's COLUMNS


def test_compare_marks_the_best_run_and_splits_the_config(
        sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = out_of(capsys, "compare", "--root", str(sweep), "--where", "seed < 3")
    lines = text.splitlines()
    val = next(line for line in lines if line.startswith("epoch/val_loss"))
    best = min(range(3), key=lambda i: sweep_metrics(sweep_config(i), 3)[0])
    cells = val.split("  ")
    cells = [c.strip() for c in cells if c.strip()][1:]
    names = lines[0].removeprefix("runs: ").split(", ")
    assert [c.endswith("*") for c in cells] == [n == f"sweep-{best:04d}" for n in names]
    lr_line = next(line for line in lines if line.startswith("lr "))
    assert "*" not in lr_line  # lr has no winner
    differ = lines.index("config: differences")
    common = lines.index("config: in common")
    assert any(line.startswith("optimizer.lr") for line in lines[differ:common])
    text = out_of(capsys, "compare", "sweep-0004", "sweep-0005", "--root", str(sweep))
    common_lines = text.split("config: in common")[1].splitlines()
    assert any(line.startswith("model.width") for line in common_lines)  # both 128
    assert main(["compare", "--root", str(sweep), "--where", "seed > 100"]) == 2
    assert "matches 0 run(s)" in capsys.readouterr().err


def test_a_broken_pipe_exits_quietly(sweep: Path) -> None:
    proc = subprocess.run(f"{sys.executable} -m loopwise runs {sweep} --format json "
                          "| head -c 10; exit ${PIPESTATUS[0]}", shell=True,
                          executable="/bin/bash", env=ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "[\n {\n  \"na"
    proc = subprocess.run(f"{sys.executable} -m loopwise show sweep-0001 --root {sweep} "
                          "| head -1; exit ${PIPESTATUS[0]}", shell=True,
                          executable="/bin/bash", env=ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("run      sweep-0001")


def test_export_takes_its_options_in_any_order(sweep: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    assert main(["export", "sweep-0002", "--root", str(sweep), str(out)]) == 0
    assert out.read_text().startswith("step,")
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["export", "sweep-0002", "--root", str(sweep), str(out), "extra"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments:" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--width", "5"], "loopwise runs: error: --width must be an int >= 20 (terminal columns), got 5"),
    (["--limit", "0"], "loopwise runs: error: --limit must be an int >= 1 (rows shown), got 0"),
])
def test_bad_options_are_one_line(sweep: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    assert main(["runs", str(sweep), *args]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_a_run_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    from loopwise.record import Run, RunReader

    root = tmp_path / "runs"
    make_sweep(root, 3)
    table = RunTable(root)
    first = {r.name: r for r in table.rows()}
    RunReader(root / "sweep-0001").series("loss")  # SQLite leaves an empty -wal behind
    (root / "not-a-run").mkdir()  # a folder without run.json is no run
    (root / "notes.txt").write_text("x")
    again = {r.name: r for r in table.rows()}
    assert set(again) == set(first)
    assert all(again[n] is first[n] for n in first)  # nothing re-read, the same rows
    with Run.reopen(root / "sweep-0001") as run:
        run.log_scalars({"loss": 0.001}, step=21)
    changed = {r.name: r for r in table.rows()}
    assert changed["sweep-0001"].final["loss"] == 0.001 and changed["sweep-0001"].steps == 21
    assert changed["sweep-0002"] is first["sweep-0002"]
