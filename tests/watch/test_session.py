"""loopwise.TrainingSession: exact output, what is recorded, and the rules for calls out of order."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from loopwise.record import RunReader
from loopwise.record.run import Run
from loopwise.watch.session import SessionOrderWarning, TrainingSession

FULL = "█" * 70


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


Maker = Callable[..., tuple[TrainingSession, io.StringIO, Clock]]


@pytest.fixture
def make() -> Iterator[Maker]:
    """Make sessions writing to a StringIO with a fake clock; closed at teardown even when a
    test fails, so no run is left open."""
    made: list[TrainingSession] = []

    def factory(*args: Any, **kwargs: Any) -> tuple[TrainingSession, io.StringIO, Clock]:
        out, clock = io.StringIO(), Clock()
        session = TrainingSession(*args, **{"file": out, "clock": clock, "system": False, **kwargs})
        made.append(session)
        return session, out, clock

    yield factory
    for session in made:
        session.close()


def one_epoch(session: TrainingSession, clock: Clock, epoch: int = 1, *, validate: bool = True,
              loss: float = 2.3089) -> None:
    session.start_epoch(epoch)
    clock.t += 0.5
    session.update_training_progress(1, 2.5, 0.1)
    clock.t += 0.5
    session.update_training_progress(2, loss, 0.125)
    session.finish_training_epoch()
    if validate:
        session.start_validation()
        clock.t += 0.5
        session.update_validation_progress(1, 2.2834, 0.152)
        session.finish_validation_epoch()


def series(run: Run, key: str) -> tuple[list[int], list[float]]:
    s = RunReader(run.path).series(key)
    return list(s.steps), list(s.values)


def test_output_in_the_reference_format(make: Maker) -> None:
    session, out, clock = make("MyCNN", 1, 2, 1, record=False)
    session.start_training()
    one_epoch(session, clock)
    session.print_epoch_summary()
    assert out.getvalue().split("\n") == [  # 50 % came 0.5 s in: under a second, no line
        "Starting training...",
        f"Epoch 1/1 (Training): 100%|{FULL}| 2/2 [00:01<00:00, 2.00batch/s, loss=2.3089, "
        "accuracy=12.50%]",
        f"Epoch 1/1 (Validation): 100%|{FULL}| 1/1 [00:00<00:00, 2.00batch/s, loss=2.2834, "
        "accuracy=15.20%]",
        "",
        "Epoch 1/1 Summary:",
        "  Training   - Loss: 2.3089, Accuracy: 12.50%",
        "  Validation - Loss: 2.2834, Accuracy: 15.20%",
        "",
        "",
    ]
    assert session.history[0].train == {"loss": 2.3089, "accuracy": 0.125}
    assert session.run is None


def test_model_architecture_is_printed_and_recorded(make: Maker) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    session, out, _ = make("Tiny", 1, 2, 0, model=model, input_size=(3, 4))
    session.start_training()
    text = out.getvalue()
    assert text.startswith("Model Architecture:\nTiny(\n  (0): Linear(in_features=4")
    assert "Total parameters: 58\n" in text
    assert "Estimated Total Size (MB): " in text
    assert text.endswith("\n\nStarting training...\n")
    session.close()
    assert session.run is not None
    event = RunReader(session.run.path).events(kind="model_summary")[0]
    assert event.message.startswith("Tiny(") and event.data["total_params"] == 58


def test_everything_shown_is_recorded_and_own_run_closed_at_the_end(make: Maker) -> None:
    session, out, clock = make("M", 2, 2, 1, root="myruns")
    session.start_training()
    for epoch in (1, 2):
        one_epoch(session, clock, epoch, loss=2.0 / epoch)
        session.print_epoch_summary()
        assert ("Metric statistics (per epoch)" in out.getvalue()) == (epoch == 2)
    table = out.getvalue().split("Metric statistics (per epoch)")[1]
    assert "epoch/loss" in table and "epoch/val_loss" in table
    run = session.run
    assert run is not None and run.closed and run.status == "finished"
    assert run.path.parent == Path("myruns").absolute()
    assert series(run, "loss") == ([1, 2, 3, 4], [2.5, 2.0, 2.5, 1.0])
    assert series(run, "accuracy") == ([1, 2, 3, 4], [0.1, 0.125, 0.1, 0.125])
    # epoch summaries at the global step where each epoch ended (docs/record.md)
    assert series(run, "epoch/loss") == ([2, 4], [2.0, 1.0])
    assert series(run, "epoch/val_loss") == ([2, 4], [2.2834, 2.2834])
    assert RunReader(run.path).series("loss").epochs.tolist() == [1, 1, 2, 2]
    assert series(run, "epoch/val_accuracy")[1] == [0.152, 0.152]
    reader = RunReader(run.path)
    assert [e.kind for e in reader.events()] == ["session_start", "epoch_end", "epoch_end"]
    end = reader.events(kind="epoch_end")[1]
    assert end.data == {"epoch": 2, "train": {"loss": 1.0, "accuracy": 0.125},
                        "val": {"loss": 2.2834, "accuracy": 0.152}}
    assert reader.config()["steps_per_epoch"] == 2
    assert reader.info["status"] == "finished"


def test_given_run_continues_its_steps_and_is_not_closed(make: Maker) -> None:
    run = Run.create("runs", "given")
    run.advance(100)
    session, _, clock = make("M", 1, 2, 0, run=run)
    session.start_training()
    one_epoch(session, clock, validate=False)
    assert not run.closed
    assert run.global_step == session.global_step == 102
    run.flush()
    assert series(run, "loss")[0] == [101, 102]
    assert series(run, "epoch/loss") == ([102], [2.3089])  # the step where the epoch ended
    session.close()
    assert not run.closed
    run.close()


def test_tensors_numpy_and_metrics(make: Maker) -> None:
    session, out, _ = make("M", 1, 2, 1)
    with pytest.warns(SessionOrderWarning):
        session.start_epoch(1)
    session.update_training_progress(1, torch.tensor(0.5), np.float32(0.25),
                                     {"lr": 0.1, "grad_norm": torch.tensor([3.0])})
    session.update_training_progress(2, torch.tensor(0.25, requires_grad=True), 0.5,
                                     {"lr": 0.05, "grad_norm": 2})
    session.finish_training_epoch()
    session.start_validation()
    session.update_validation_progress(1, torch.tensor(0.75), metrics={"top5_acc": 0.9})
    session.finish_validation_epoch()
    run = session.run
    assert run is not None and run.closed
    assert series(run, "grad_norm") == ([1, 2], [3.0, 2.0])
    assert series(run, "epoch/lr") == ([2], [0.05])
    assert series(run, "epoch/val_top5_acc") == ([2], [0.9])
    assert "RuntimeWarning" not in out.getvalue()
    session.print_epoch_summary()
    assert out.getvalue().split("Metric statistics")[0].endswith(
        "Epoch 1/1 Summary:\n"
        "  Training   - Loss: 0.2500, Accuracy: 50.00%, lr: 0.0500, grad_norm: 2.0000\n"
        "  Validation - Loss: 0.7500, top5_acc: 90.00%\n\n"
    )


def test_errors_for_calls_out_of_order_record_nothing_for_the_bad_call(make: Maker) -> None:
    session, _, _ = make("M", 2, 3, 1)
    session.start_training()
    with pytest.raises(RuntimeError, match=r"update_training_progress\(\) called before "
                       r"start_epoch\(\); call start_epoch\(epoch\) first"):
        session.update_training_progress(1, 1.0)
    with pytest.raises(RuntimeError, match=r"finish_training_epoch\(\) called before start_epoch"):
        session.finish_training_epoch()
    with pytest.raises(RuntimeError, match=r"start_validation\(\) needs an epoch"):
        session.start_validation()
    with pytest.raises(RuntimeError, match=r"print_epoch_summary\(\) before any epoch"):
        session.print_epoch_summary()
    with pytest.raises(ValueError, match=r"start_epoch\(\)'s epoch must be an int from 1 to 2 "
                                           r"\(epochs are 1-based .* got 0$"):
        session.start_epoch(0)
    session.start_epoch(1)
    session.update_training_progress(1, 1.0)
    with pytest.raises(ValueError, match=r"step 4 is beyond steps_per_epoch=3; pass the loader's"):
        session.update_training_progress(4, 9.0)
    with pytest.raises(ValueError, match="step 1 is not after the previous step 1"):
        session.update_training_progress(1, 9.0)
    with pytest.raises(ValueError, match="steps are 1-based: the first step is 1, got 0"):
        session.update_training_progress(0, 9.0)
    with pytest.raises(TypeError, match=r"step must be an int \(the 1-based step"):
        session.update_training_progress(2.0, 9.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metric 'loss' must be a real number \\(int or float\\), got str"):
        session.update_training_progress(2, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"metric 'loss' is a tensor of shape \(3,\); log a one-element"):
        session.update_training_progress(2, torch.ones(3))
    with pytest.raises(ValueError, match="metrics must not contain 'loss'; pass it as the loss="):
        session.update_training_progress(2, 1.0, metrics={"loss": 2.0})
    with pytest.raises(RuntimeError, match=r"update_validation_progress\(\) called during "
                       r"training; call start_validation\(\) first"):
        session.update_validation_progress(1, 1.0)
    session.update_training_progress(np.int64(2), 0.5)  # still usable; a NumPy step is an int
    session.finish_training_epoch()
    session.start_validation()
    with pytest.raises(TypeError, match=r"step must be an int \(the 1-based step"):
        session.update_validation_progress("1", 0.7)  # type: ignore[arg-type]
    session.update_validation_progress(np.int32(1), 0.7)
    session.finish_validation_epoch()
    with pytest.raises(RuntimeError, match="epoch 1 was already validated; call start_epoch"):
        session.start_validation()
    with pytest.raises(ValueError, match=r"from 2 to 2 .*the last one started is 1\), got 1"):
        session.start_epoch(1)
    assert session.run is not None
    session.run.flush()
    assert series(session.run, "loss") == ([1, 2], [1.0, 0.5])
    session.close()
    with pytest.raises(RuntimeError, match=r"start_epoch\(\): this TrainingSession is closed"):
        session.start_epoch(2)
    with pytest.raises(RuntimeError, match="this TrainingSession is closed"):
        session.update_training_progress(1, 1.0)


def test_validation_steps_zero(make: Maker) -> None:
    session, out, clock = make("M", 1, 2, 0, record=False)
    session.start_training()
    one_epoch(session, clock, validate=False)
    with pytest.raises(ValueError, match="start_validation.. with validation_steps=0"):
        session.start_validation()
    session.print_epoch_summary()
    assert out.getvalue().endswith("  Training   - Loss: 2.3089, Accuracy: 12.50%\n\n")
    assert session.history[0].val is None


def test_warnings_where_tolerance_is_expected(make: Maker) -> None:
    session, out, _ = make("M", 3, 2, 1)
    with pytest.warns(SessionOrderWarning, match=r"start_epoch\(1\) before start_training\(\); "
                      "starting training now"):
        session.start_epoch(1)
    assert out.getvalue().startswith("Starting training...\n")
    with pytest.warns(SessionOrderWarning, match=r"start_training\(\) was already called"):
        session.start_training()
    session.update_training_progress(1, 1.0)
    with pytest.warns(SessionOrderWarning, match=r"start_validation\(\) while epoch 1's "
                      "training is open; finishing it now"):
        session.start_validation()
    with pytest.warns(SessionOrderWarning, match="epoch 1's training is already finished; this "
                      "call is ignored"):
        session.finish_training_epoch()
    session.update_validation_progress(1, 0.5)
    with pytest.warns(SessionOrderWarning, match=r"print_epoch_summary\(\) while epoch 1's "
                      "validation is open"):
        session.print_epoch_summary()
    with pytest.warns(SessionOrderWarning, match="validation is already finished"):
        session.finish_validation_epoch()
    session.start_epoch(2)
    session.update_training_progress(1, 0.9)
    with pytest.warns(SessionOrderWarning, match=r"start_epoch\(3\) while epoch 2's training"):
        session.start_epoch(3)  # epoch 2 is kept without validation
    assert [r.val is None for r in session.history] == [False, True]
    assert session.history[1].train == {"loss": 0.9}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.update_training_progress(2, 0.8)
        session.finish_training_epoch()
        session.start_validation()
        session.update_validation_progress(1, 0.6)
        session.finish_validation_epoch()
    run = session.run
    assert run is not None and run.closed
    events = RunReader(run.path).events(kind="session_order")
    assert len(events) == 7 and {e.level for e in events} == {"warning"}
    assert events[0].message == "start_epoch(1) before start_training(); starting training now"
    assert series(run, "epoch/loss") == ([1, 2, 4], [1.0, 0.9, 0.8])
    assert series(run, "epoch")[1] == [1.0, 2.0, 3.0]


def test_exception_in_with_block_fails_own_run_and_keeps_steps(make: Maker) -> None:
    session, _, _ = make("M", 2, 5, 1)
    with pytest.raises(ZeroDivisionError), session:
        session.start_training()
        session.start_epoch(1)
        session.update_training_progress(1, 1.0)
        session.update_training_progress(2, 0.5)
        raise ZeroDivisionError("boom")
    run = session.run
    assert run is not None and run.status == "failed"
    assert series(run, "loss") == ([1, 2], [1.0, 0.5])
    assert RunReader(run.path).info["status"] == "failed"


def test_ctrl_c_interrupts_and_close_after_a_validated_epoch_keeps_it(make: Maker) -> None:
    session, _, clock = make("M", 3, 2, 1)
    with pytest.raises(KeyboardInterrupt), session:
        session.start_training()
        one_epoch(session, clock)
        session.start_epoch(2)
        raise KeyboardInterrupt
    assert session.run is not None and session.run.status == "interrupted"
    assert len(session.history) == 1


def test_close_after_an_unvalidated_last_epoch_records_it(make: Maker) -> None:
    session, _, clock = make("M", 1, 2, 1)
    session.start_training()
    one_epoch(session, clock, validate=False)
    assert session.run is not None and not session.run.closed
    session.close()
    assert session.run.closed and session.run.status == "finished"
    assert len(session.history) == 1
    session.close()


def test_record_false_writes_nothing(make: Maker) -> None:
    session, _, clock = make("M", 1, 2, 1, record=False)
    session.start_training()
    one_epoch(session, clock)
    assert session.run is None
    assert not Path("runs").exists()


def test_system_monitor_is_started_for_the_run(make: Maker) -> None:
    from loopwise.watch.system import SystemMonitor

    session, _, _ = make("M", 1, 2, 0, system=True)
    session.start_training()
    assert session.run is not None
    sampler = session.run.find_helper(SystemMonitor)
    assert sampler is not None and sampler.running
    session.close()
    assert not sampler.running  # stopped with the run


def test_state_dict_resume(make: Maker) -> None:
    first, _, clock = make("M", 3, 2, 1, record=False)
    first.start_training()
    one_epoch(first, clock)
    state = first.state_dict()
    assert state["epoch"] == 1 and state["global_step"] == 2
    second, _, clock2 = make("M", 3, 2, 1)
    second.load_state_dict(state)
    second.start_training()
    with pytest.raises(ValueError, match="from 2 to 3"):
        second.start_epoch(1)
    one_epoch(second, clock2, 2)
    assert [r.epoch for r in second.history] == [1, 2]
    assert second.run is not None
    second.run.flush()
    assert series(second.run, "loss")[0] == [3, 4]
    with pytest.raises(RuntimeError, match="before the first start_epoch"):
        second.load_state_dict(state)
    with pytest.raises(KeyError, match="missing"):
        make("M", 3, 2, 1, record=False)[0].load_state_dict({"epoch": 1})
    second.close()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("", 1, 1, 0), {}, ValueError, "model_name must be a non-empty string"),
        (("M", 0, 1, 0), {}, ValueError, r"epochs must be an int >= 1 \(epochs to train\), got 0"),
        (("M", 1, 0, 0), {}, ValueError, "steps_per_epoch must be an int >= 1"),
        (("M", 1, 1, -1), {}, ValueError, "validation_steps must be an int >= 0"),
        (("M", 1, 1, 0), {"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        (("M", 1, 1, 0), {"input_size": (1, 2)}, ValueError, "input_size needs model="),
        (("M", 1, 1, 0), {"run": "runs/x"}, TypeError, "run must be a loopwise Run"),
        (("M", 1, 1, 0), {"file": 3}, TypeError, "file must be a text stream"),
    ],
)
def test_constructor_errors(args: tuple, kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TrainingSession(*args, record=False, **kwargs)
    assert not Path("runs").exists()


def test_run_with_record_false_or_closed_run() -> None:
    run = Run.create("runs", "r")
    with pytest.raises(ValueError, match="run= was given with record=False"):
        TrainingSession("M", 1, 1, 0, run=run, record=False)
    run.close()
    with pytest.raises(ValueError, match="already closed; pass an open run"):
        TrainingSession("M", 1, 1, 0, run=run)


def test_bad_input_size_for_the_summary_names_the_layer(make: Maker) -> None:
    from loopwise.watch.summary import SummaryError

    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(9, 2))
    session, _, _ = make("M", 1, 1, 0, model=model, input_size=(2, 4))
    with pytest.raises(SummaryError, match=r"layer '1' .*input shape \[2, 8\]"):
        session.start_training()
    session.close("failed")


class FakeCuda(torch.Tensor):
    """A CPU tensor that says it lives on a GPU and counts every read of its value."""

    reads = 0

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)

    def item(self) -> Any:
        FakeCuda.reads += 1
        return super().item()

    def __float__(self) -> float:
        FakeCuda.reads += 1
        return super().__float__()

    def tolist(self) -> Any:
        FakeCuda.reads += 1
        return super().tolist()


def test_device_values_are_read_in_batches_not_per_step(make: Maker) -> None:
    session, _, _ = make("M", 1, 1000, 0)
    session.start_training()
    session.start_epoch(1)
    FakeCuda.reads = 0
    for step in range(1, 201):
        session.update_training_progress(step, torch.tensor(float(step)).as_subclass(FakeCuda))
    # one batched read per flush (every second of wall time) and per drawn line (every 10 %),
    # never one per step
    assert FakeCuda.reads <= 6
    session.finish_training_epoch()
    session.close()
    assert session.run is not None
    assert series(session.run, "loss") == (list(range(1, 201)), [float(i) for i in range(1, 201)])


def test_after_the_last_epoch(make: Maker) -> None:
    session, out, clock = make("M", 1, 2, 1)
    session.start_training()
    one_epoch(session, clock)
    with pytest.raises(RuntimeError, match="all 1 epochs were started; make a new"):
        session.start_epoch(2)
    session.print_epoch_summary()  # the run is closed, printing still works
    text = out.getvalue()
    assert text.split("Metric statistics")[0].endswith(
        "Validation - Loss: 2.2834, Accuracy: 15.20%\n\n")
    assert "epoch/val_accuracy" in text.split("Metric statistics")[1]
    session.close()
    with pytest.raises(RuntimeError, match=r"print_epoch_summary\(\): this TrainingSession is"):
        session.print_epoch_summary()


def test_epoch_values_feed_the_runs_health_detectors(make: Maker) -> None:
    session, _, clock = make("M", 7, 2, 1)
    session.start_training()
    for epoch in range(1, 8):
        one_epoch(session, clock, epoch, loss=1.0)  # validation never improves
    run = session.run
    assert run is not None and run.closed
    assert [e.kind for e in RunReader(run.path).events()].count("health.plateau") == 1


def test_an_epoch_without_validation_is_one_metrics_line_with_its_seconds(make: Maker) -> None:
    session, _, clock = make("M", 2, 2, 0, root="runs")
    session.start_training()
    for epoch in (1, 2):
        one_epoch(session, clock, epoch, validate=False)
    assert session.run is not None
    path = session.run.path
    session.close()
    lines = [json.loads(x) for x in (path / "log.jsonl").read_text().splitlines()]
    epochs = [x for x in lines if x["type"] == "metrics"]
    assert [(x["epoch"], sorted(x["values"])) for x in epochs] == [
        (1, ["accuracy", "loss", "seconds"]), (2, ["accuracy", "loss", "seconds"])]
    assert epochs[0]["values"]["loss"] == 2.3089 and epochs[0]["values"]["seconds"] == 1.0
    assert series(session.run, "epoch/seconds") == ([2, 4], [1.0, 1.0])
