"""``make demo`` (``python -m loopwise.demo``): the runs root holds only runs, and the commands it
prints at the end work when pasted into a fresh shell."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")


def test_demo_leaves_only_runs_in_the_root_and_prints_commands_that_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from loopwise.demo import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert main(["--epochs", "1"]) == 0
    out = capsys.readouterr().out
    root = tmp_path / "runs"
    assert all((p / "run.json").is_file() for p in root.iterdir()), sorted(root.iterdir())
    assert {p.name for p in (tmp_path / "demo-data").iterdir()} == {"digits.npz",
                                                                    "demo-monitor.csv"}
    line = next(x for x in out.splitlines() if x.startswith("all runs"))
    command = shlex.split(line.split(":", 1)[1])
    assert command[-2:] == ["runs", "runs"] and command[0] != "loopwise"
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert "digits-fit" in done.stdout
