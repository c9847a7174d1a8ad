"""The docs say what the code does: the keys fit records, the crash-loss bound, the examples."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from loopwise.cli import main
from loopwise.record import Run, RunReader
from loopwise.watch.monitor import TrainingMonitor

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"


def _recorded_table(doc: str) -> set[str]:
    """The backticked keys in the first column of the doc's "What is recorded" table."""
    text = (DOCS / doc).read_text()
    table = text.split("### What is recorded", 1)[1].split("\n\n", 2)[1]
    keys: set[str] = set()
    for row in table.splitlines()[2:]:
        keys.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return keys


def test_fit_md_lists_exactly_the_keys_fit_records(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 4))
    np.savez(tmp_path / "d.npz", X=X, Y=(X[:, 0] > 0).astype(np.int64))
    assert main(["fit", str(tmp_path / "d.npz"), "--root", str(tmp_path), "--name", "docs",
                 "--epochs", "2", "--hidden-size", "8", "--num-layers", "1"]) == 0
    capsys.readouterr()
    recorded = set(RunReader(tmp_path / "docs").keys())
    assert recorded == _recorded_table("fit.md")


def test_no_doc_describes_the_old_schema() -> None:
    for doc in ("fit.md", "progress.md"):
        text = (DOCS / doc).read_text()
        for old in ("train/batch_loss", "epoch/train_loss", "(step = epoch)",
                    "| the epoch number |"):
            assert old not in text, f"docs/{doc} still says {old!r}"


def test_readme_states_the_crash_loss_bound_of_the_defaults() -> None:
    refresh = inspect.signature(TrainingMonitor.__init__).parameters["mininterval"].default
    flush = inspect.signature(Run.create).parameters["flush_interval"].default
    bound = f"({refresh:g} s + {flush:g} s = {refresh + flush:g} s with TrainingMonitor's"
    assert bound in " ".join(README.read_text().split())


def test_the_workflow_example_lines_up_with_fit_and_keras_doc_on_tf_tensors() -> None:
    text = (DOCS / "workflow.md").read_text()
    example = text.split("def train_loop", 1)[1].split("def evaluate", 1)[0]
    assert 'return {"loss":' in example  # recorded as epoch/loss, as fit records it
    assert "not supported yet" not in (DOCS / "keras.md").read_text()
