"""TrainerSteps: a trainer's own global step and values -> the run, through the accumulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from loopwise.record import RunReader
from loopwise.record.run import Run
from loopwise.watch.trainer_steps import (
    TrainerSteps,
    check_options,
    end_trainer_run,
    json_config,
    open_run,
)


def _steps(path: Path, key: str = "loss") -> list[int]:
    return list(RunReader(path).series(key).steps)


def test_values_land_at_the_trainer_s_steps_and_gaps_advance_the_run(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "a")
    steps = TrainerSteps(run, health=False)
    steps.add(1, {"loss": torch.tensor(0.5)})  # a tensor: read at the refresh
    steps.add(2, {})  # a step with no values: its wall time only
    steps.add(5, {"loss": 0.25, "lr": 0.1})  # logged every few steps (HF's logging_steps)
    steps.add(5, {"grad_norm": 1.0})  # a second log at the same step joins it
    steps.flush()
    assert run.global_step == 5
    assert steps.means() == {"loss": 0.375, "lr": 0.1, "grad_norm": 1.0}
    steps.add(5, {"acc": 0.9})  # late: after the hand-over, recorded directly
    run.close()
    assert _steps(run.path) == [1, 5]
    assert _steps(run.path, "grad_norm") == [5] and _steps(run.path, "acc") == [5]
    assert RunReader(run.path).series("loss").values[0] == 0.5


def test_a_resume_records_every_step_once(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "b")
    steps = TrainerSteps(run, health=False)
    for step in range(1, 8):  # killed at step 7, the checkpoint was at step 5
        steps.add(step, {"loss": float(step)})
    steps.flush()
    run.flush()
    run.close("interrupted")
    run = open_run(previous=run.path, root=tmp_path, name=None, config={"x": 1},
                   resuming=True)
    steps = TrainerSteps(run, health=False)
    assert steps.recorded == 7
    steps.start_at(5)
    for step in range(6, 11):  # 6 and 7 run again
        steps.add(step, {"loss": 100.0 + step})
    steps.flush()
    assert steps.means()["loss"] == pytest.approx(sum(100.0 + s for s in range(6, 11)) / 5)
    run.close()
    reader = RunReader(run.path)
    assert list(reader.series("loss").steps) == list(range(1, 11))
    assert list(reader.series("loss").values)[5:] == [6.0, 7.0, 108.0, 109.0, 110.0]
    assert reader.config() == {"x": 1}


def test_open_run_resumes_an_unfinished_named_run_and_not_a_finished_one(
        tmp_path: Path) -> None:
    Run.create(tmp_path, "c").close("failed")
    again = open_run(previous=None, root=tmp_path, name="c", config={}, resuming=True)
    assert again.path.name == "c"
    again.close("finished")
    with pytest.raises(FileExistsError, match="a run named 'c' already exists"):
        open_run(previous=None, root=tmp_path, name="c", config={}, resuming=True)


def test_json_config_keeps_what_json_cannot_hold_as_text() -> None:
    assert json_config({"path": Path("/a"), "nan": float("nan"), "n": 1, 2: "x"}) == {
        "path": "/a", "nan": None, "n": 1, "2": "x"}
    with pytest.raises(TypeError, match="config must be a dict, got list"):
        json_config([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"flush_interval must be a finite number > 0 \(seconds\), got 0"):
        TrainerSteps(None, interval=0)  # type: ignore[arg-type]


def test_end_trainer_run_hands_over_and_closes_only_an_own_run(tmp_path: Path) -> None:
    own = Run.create(tmp_path, "own")
    steps = TrainerSteps(own, health=False, interval=3600.0)
    steps.add(1, {"loss": 0.5})  # pending: the long interval kept it back
    end_trainer_run(own, steps, "interrupted")
    assert own.closed
    reader = RunReader(own.path)
    assert reader.status == "interrupted"
    assert list(reader.series("loss").steps) == [1]
    assert [e.message for e in reader.events(kind="interrupted")] == ["interrupted by Ctrl-C"]
    end_trainer_run(own, steps, "failed")  # already ended: nothing changes
    assert RunReader(own.path).status == "interrupted"

    given = Run.create(tmp_path, "given")
    given_steps = TrainerSteps(given, health=False, interval=3600.0)
    given_steps.add(1, {"loss": 0.25})
    end_trainer_run(given, given_steps, "failed", error="boom", own=False)
    assert not given.closed  # its owner closes it
    assert list(RunReader(given.path).series("loss").steps) == [1]
    given.close()


@pytest.mark.parametrize(("option", "message"), [
    ({"run": "runs/x"}, "run must be a loopwise Run, got str"),
    ({"root": 3}, "root must be a path, got int"),
    ({"name": 3}, "name must be a string (the run's folder name), got int"),
    ({"config": [1]}, "config must be a dict, got list"),
    ({"flush_interval": True}, "flush_interval must be a finite number > 0 (seconds), got bool"),
    ({"exporters": [object()]}, "exporters must be loopwise Recorders (e.g. from "
                                "loopwise.export), got object"),
])
def test_check_options_names_what_was_wrong(option: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"run": None, "root": "runs", "name": None, "config": None,
                                  "flush_interval": 1.0, "exporters": ()}
    with pytest.raises((TypeError, ValueError)) as info:
        check_options(**{**options, **option})  # type: ignore[arg-type]
    assert str(info.value) == message
