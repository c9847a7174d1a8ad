"""The ``loopwise`` verbs over fixture runs: output, exit codes, bad RUN names, prefixes."""

import csv
import json
import sys
import urllib.request
from pathlib import Path

import pytest
from _view_kit import HOSTILE, Server

from loopwise.cli import main
from loopwise.record import Run

VERBS = ("runs", "show", "compare", "export", "report", "doctor", "ui", "fit")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: loopwise {verb}")
    if verb not in ("runs", "ui", "fit"):
        assert "RUN" in out


def test_runs_shows_steps_final_and_best(runs_root: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(runs_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "steps" in lines[0] and "best.loss" in lines[0] and "final.loss" in lines[0]
    assert lines[0].index("best.epoch/val_loss") < lines[0].index("best.loss")  # validation first
    row = next(line for line in lines if line.startswith("alpha-2"))
    assert " 300 " in row and "finished" in row
    assert main(["runs", str(runs_root), "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    best = rows["alpha-2"]["best"]
    assert 0.19 < best["loss"] < 0.22  # the minimum, not the spike of 25
    assert best["epoch/loss"] > best["loss"]


def test_show_by_name_prints_statistics_and_events(runs_root: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "beta", "--root", str(runs_root)]) == 0
    out = capsys.readouterr().out
    assert "batch_size=64" in out
    assert "statistics" in out and "slope/step" in out
    assert "[info] checkpoint_saved: checkpoint of epoch 3" in out
    assert HOSTILE in out  # shown as text; printable leaves visible characters alone


def test_show_escapes_control_characters_in_metric_names(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from loopwise.record import Run

    with Run.create(tmp_path / "runs", "ctl") as run:
        run.log_scalars({"bad\x1b]0;owned\x07": 1.0}, step=1)
    assert main(["show", "ctl", "--root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out.split("statistics", 1)[1]
    assert "bad\\x1b]0;owned\\x07" in out


def test_compare_config_differences_and_metrics(runs_root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "alpha-1", "alpha-2", "beta", "--root", str(runs_root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    lr = next(line for line in lines if line.startswith("lr "))
    assert lr.split() == ["lr", "0.1", "0.01", "0.1"]
    assert next(line for line in lines if line.startswith("batch_size")).split() == [
        "batch_size", "32", "32", "64"]
    loss = next(line for line in lines if line.startswith("loss "))
    assert loss.count("/") == 3
    assert HOSTILE in out and " - " in next(line for line in lines if line.startswith(HOSTILE))


def test_compare_needs_two_runs(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "beta", "--root", str(runs_root)]) == 2
    assert capsys.readouterr().err.strip() == (
        "loopwise compare: error: compare needs two or more runs (or --where EXPR), got 1")


def test_ambiguous_prefix_is_one_line_listing_candidates(runs_root: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("show", "doctor", "report", "export"):
        assert main([verb, "alph", "--root", str(runs_root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"loopwise {verb}: error: alph matches 2 runs")
        assert "alpha-1, alpha-2" in err


def test_unknown_run_is_an_error(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "beta", "nope", "--root", str(runs_root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopwise compare: error: no run nope: not a loopwise run folder")


def test_export_jsonl_and_parquet(runs_root: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "beta.jsonl"
    assert main(["export", "beta", str(out), "--root", str(runs_root)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 300 and rows[0]["step"] == 1 and HOSTILE in rows[0]
    assert rows[99]["epoch/val_loss"] == pytest.approx(rows[99]["loss"] * 1.1)
    assert "epoch/val_loss" not in rows[0]
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", "beta", "--format", "parquet", "--root", str(runs_root)]) == 0
    table = pq.read_table("beta.parquet")
    assert table.num_rows == 300 and table.column_names[:3] == ["step", "wall_time", "loss"]
    assert table.column("epoch/loss").null_count == 297
    assert main(["export", "beta", "b.csv", "--root", str(runs_root)]) == 0
    with open("b.csv") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["step", "wall_time", "loss"] and "'" + HOSTILE not in header


def test_export_refuses_an_unknown_extension_and_writes_nothing(
        runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.xyz"
    assert main(["export", "beta", str(out), "--root", str(runs_root)]) == 2
    err = capsys.readouterr().err
    assert "unknown file extension '.xyz'; known: .csv, .jsonl, .parquet (or give --format)" in err
    assert not out.exists()
    assert main(["export", "beta", str(out), "--format", "csv", "--root", str(runs_root)]) == 0
    assert out.read_text().startswith("step,wall_time,loss")


def test_export_parquet_without_pyarrow_names_the_extra(
        runs_root: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["export", "beta", "--format", "parquet", "--root", str(runs_root)]) == 2
    assert "pip install 'loopwise[parquet]'" in capsys.readouterr().err


def test_report_writes_into_the_run_or_given_file(runs_root: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "beta", "--root", str(runs_root)]) == 0
    assert capsys.readouterr().out.strip() == str(runs_root / "beta" / "report.html")
    assert main(["report", "beta", "-o", str(tmp_path / "r.html"), "--root",
                 str(runs_root)]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert main(["report", "beta", "-o", str(tmp_path), "--root", str(runs_root)]) == 2
    assert "is a folder; give a file name such as report.html" in capsys.readouterr().err


def test_ui_waits_for_a_root_that_does_not_exist_yet(tmp_path: Path) -> None:
    server = Server(tmp_path / "later")
    try:
        assert json.loads(urllib.request.urlopen(server.url + "/api/runs").read()) == []
        with Run.create(tmp_path / "later", "first"):
            pass
        runs = json.loads(urllib.request.urlopen(server.url + "/api/runs").read())
        assert [r["name"] for r in runs] == ["first"]
    finally:
        server.stop()
    assert server.proc.stdout is not None
    assert "does not exist yet; waiting for runs to appear there" in server.proc.stdout.read()
