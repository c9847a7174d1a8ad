"""The kill campaign: fit, Workflow, a TrainingMonitor loop with a CheckpointManager, the same
loop with TensorBoard and MLflow exporters, and the Keras callback (KERAS_BACKEND=torch), each
SIGKILLed at seeded points inside the run (a checkpoint write or commit, a step, a record
flush, an exporter delivery; ``_kill_child.py``) and resumed.

Each kill must leave a run that reads ``crashed``, with no corrupt file, having lost at most the
last refresh interval of its record; each resume must finish with weights bit-identical to an
uninterrupted run. Two kills per entry point here; ``LOOPWISE_SOAK=1`` runs 12 (see
docs/reliability.md). The 2-rank torchrun kill is in tests/integrations/test_distributed.py.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _kill_tools import Trial, draw_kills, run_child, run_trial, summary

ENTRIES = ["fit", "workflow", "monitor", "exporters", "keras"]
NEEDS = {"keras": ("keras",), "exporters": ("mlflow", "tensorboard")}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``campaign(entry)``: the entry's trials (run once per module): an uninterrupted
    reference run (which also counts the kill points), then the kills, two at a time."""
    done: dict[str, list[Trial]] = {}

    def get(entry: str) -> list[Trial]:
        missing = [m for m in NEEDS.get(entry, ()) if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"needs {', '.join(missing)} (pip install 'loopwise[dev]')")
        if entry not in done:
            work = tmp_path_factory.mktemp(f"kills-{entry}")
            root = work / "reference"
            root.mkdir()
            reference = work / ("weights.npz" if entry == "keras" else "weights.pt")
            ran = run_child(entry, root, "run", reference, "--census", str(work / "census"))
            assert ran.returncode == 0, ran.stderr[-3000:]
            census = json.loads((work / "census").read_text())
            kills = draw_kills(entry, census)
            with ThreadPoolExecutor(2) as pool:
                done[entry] = list(pool.map(
                    lambda ik: run_trial(entry, work / f"trial{ik[0]}", reference, ik[1]),
                    enumerate(kills)))
            print(f"\n{summary(done[entry])}")  # the figures of docs/reliability.md (-s)
        return done[entry]

    return get


@pytest.mark.parametrize("entry", ENTRIES)
def test_each_kill_lands_and_the_run_reads_crashed(campaign: Any, entry: str) -> None:
    for trial in campaign(entry):
        assert trial.killed_rc == -signal.SIGKILL, (trial.kill, trial.stderr)
        assert trial.status_killed == "crashed", trial


@pytest.mark.parametrize("entry", ENTRIES)
def test_no_file_of_the_run_is_corrupt_after_the_kill_or_the_resume(campaign: Any,
                                                                   entry: str) -> None:
    for trial in campaign(entry):
        assert trial.problems_killed == [], (trial.kill, trial.problems_killed)
        assert trial.problems_resumed == [], (trial.kill, trial.problems_resumed)


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_record_loses_at_most_the_last_refresh_interval(campaign: Any, entry: str) -> None:
    for trial in campaign(entry):
        assert trial.lost_seconds <= trial.loss_bound, (trial.kill, trial.lost_seconds,
                                                        trial.lost_steps)


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_resume_finishes_with_bit_identical_weights(campaign: Any, entry: str) -> None:
    for trial in campaign(entry):
        assert trial.resumed_rc == 0, (trial.kill, trial.stderr)
        assert trial.status_resumed == "finished", trial.kill
        assert trial.identical, f"{entry} killed at {trial.kill}: the weights differ"
        # the record goes on at the right global step: its end and epochs as uninterrupted
        assert trial.extra["record_end"] == trial.extra["reference_end"], trial.kill


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_resumed_record_holds_each_step_once(campaign: Any, entry: str) -> None:
    for trial in campaign(entry):
        # the steps trained after the checkpoint and before the kill are stored twice (the
        # killed process's rows and the resume's); RunReader.series returns each once
        assert trial.extra["repeated_read"] == 0, (trial.kill, trial.extra)


def test_exporters_end_closed_and_readable_after_the_resume(campaign: Any) -> None:
    for trial in campaign("exporters"):
        # one MLflow run per loopwise run (the resume continues it), closed as FINISHED
        assert trial.mlflow_resumed == ["FINISHED"], (trial.kill, trial.mlflow_resumed)
        assert trial.extra["tensorboard_last_step"] == 80, trial.kill  # 4 epochs x 20 steps


def test_mlflow_shows_the_killed_run_as_failed_not_running(campaign: Any) -> None:
    trials = campaign("exporters")
    seen = [t.mlflow_killed for t in trials if t.mlflow_killed]
    assert seen, "no kill landed after the MLflow run was made"
    for statuses in seen:
        assert statuses == ["FAILED"], statuses
