"""Fuzzing the ``loopwise`` command line in-process: argument lists built from the real
subcommands and options, with hostile values. Each either works (exit 0, or 1 for ``doctor``
findings) or is one ``loopwise ...: error:`` line with exit 2: no traceback, no escape sequence
on the terminal, and the read-only commands never change the run they read.

Paths are kept inside the test's folder (no absolute path, no ``..``): this test writes where
the command is told to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from _fuzz_tools import HOSTILE, assert_clean_cli, fuzz_settings, run_cli
from hypothesis import event, given
from hypothesis import strategies as st

from loopwise.record import Run

COMMANDS = ["runs", "show", "export", "compare", "report", "doctor", "dashboards", "fit"]
OPTIONS = ["--root", "--format", "--to", "-o", "--output", "--target", "--port", "--epochs",
           "--lr", "--batch-size", "--config", "--task", "--inputs", "--name", "--force",
           "--experiment", "--hidden-size", "--amp", "-h", "--"]
CHOICES = ["csv", "jsonl", "parquet", "tensorboard", "classification", "regression", "auto",
           "0", "-1", "1e309", "nan", "2", "99999999999999999999"]


def _safe(token: str) -> bool:
    return not token.startswith(("/", "~")) and ".." not in token and "\x00" not in token


values = st.one_of(
    st.sampled_from(CHOICES),
    st.sampled_from(["good", "runs/good", "go", "runs", "bad.csv", "cfg.json", "out.csv",
                     "out.jsonl", "tb", "nope"]),
    st.sampled_from([h for h in HOSTILE if _safe(h)]),
    st.text(max_size=12).filter(_safe))
tokens = st.one_of(st.sampled_from(OPTIONS), values)
valid_run = st.sampled_from(["good", "runs/good", "go", "g"])
runs = st.one_of(valid_run, valid_run, valid_run, values)  # mostly a real run
maybe = st.one_of(st.just([]), st.just([]), st.just([]),
                  st.lists(tokens, min_size=1, max_size=2))  # stray extra tokens, rarely


def _with(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts, maybe).map(lambda ps: [x for p in ps for x in p])


def _opt(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


one = runs.map(lambda r: [r])
root = _opt("--root", st.one_of(st.just("runs"), st.just("runs"), values))
# well-formed commands with hostile values, and free-form lists
argvs = st.one_of(
    _with(st.just(["runs"]), st.one_of(st.just([]), st.just(["runs"]), values.map(lambda v: [v]))),
    _with(st.just(["show"]), one, root),
    _with(st.just(["export"]), one, st.one_of(st.just([]), values.map(lambda v: [v + ".csv"])),
          _opt("--format", st.sampled_from(CHOICES)), root),
    _with(st.just(["export"]), one, _opt("--to", st.just("tensorboard")), st.just(["tb"])),
    _with(st.just(["compare"]), one, one, root),
    _with(st.just(["report"]), one, _opt("-o", values.map(lambda v: v + ".html")), root),
    _with(st.just(["doctor"]), one, root),
    _with(st.just(["dashboards"]), values.map(lambda v: ["--out", "dash-" + v]),
          _opt("--target", values), _opt("--port", st.sampled_from(CHOICES))),
    _with(st.just(["fit"]), st.sampled_from([["bad.csv"], ["nope.npz"]]),
          _opt("--config", st.sampled_from(["cfg.json", "nope.json", "bad.csv"])),
          _opt("--lr", st.sampled_from(CHOICES)), _opt("--task", st.sampled_from(CHOICES)),
          _opt("--name", values)),
    st.tuples(st.one_of(st.sampled_from(COMMANDS), st.text(max_size=6).filter(_safe)),
              st.lists(tokens, max_size=6)).map(lambda t: [t[0], *t[1]]))


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in ("report.html",) and "-wal" not in path.name \
                and "-shm" not in path.name:
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    with Run.create(tmp_path / "runs", "good", config={"lr": 0.1}) as run:
        for step in range(1, 30):
            run.log_scalars({"loss": 1.0 / step, "=cmd|' /C calc'!A0": float(step),
                             "\x1b]0;owned\x07": 0.5}, step=step)
        run.log_event("note", "a message with \x1b[31mcolour\x1b[0m", level="warning")
    (tmp_path / "bad.csv").write_text("a,b,target\n")  # a header, no rows: never trains
    (tmp_path / "cfg.json").write_text('{"epochs": 0}')
    return tmp_path


@given(argv=argvs)
@fuzz_settings(200)
def test_every_argument_list_works_or_is_one_clear_error(argv: list[str],
                                                         workdir: Path) -> None:
    if argv[0] == "fit" and "-h" not in argv:
        argv = [*argv, "--epochs", "1"]  # bounded, should one ever start training
    before = _digest(workdir / "runs" / "good")
    code, out, err = run_cli(argv)
    event(f"exit {code}")
    assert_clean_cli(code, out, err, argv)
    assert _digest(workdir / "runs" / "good") == before, f"{argv!r} changed the run"


@pytest.mark.parametrize("argv, shown", [
    (["runs", "runs", "\x1b]0;owned\x07"], "unrecognized arguments: \\x1b]0;owned\\x07"),
    (["fit", "\x1b[31mx.csv"], "loopwise fit: error: \\x1b[31mx.csv: no such file"),
    (["export", "good", "\x1b[2Jout.csv", "--root", "runs"], "\\x1b[2Jout.csv"),
    (["export", "good", "--to", "tensorboard", "bad.csv"], "bad.csv exists and is not a folder"),
])
def test_user_text_echoed_by_the_cli_is_escaped(argv: list[str], shown: str,
                                                workdir: Path) -> None:
    """Regressions found by the fuzzer: argparse's usage errors, ``loopwise fit``'s errors and
    the path ``loopwise export`` prints wrote the escape sequences as they were; a TensorBoard
    target that is a file kept the command retrying for 300 s a series."""
    code, out, err = run_cli(argv)
    assert_clean_cli(code, out, err, argv)
    assert shown in out + err
