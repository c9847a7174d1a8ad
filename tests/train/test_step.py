"""The step engine: OOM retry in halves (gradient accumulation), skip, NaN guard, grad norm."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from loopwise.train.step.amp import Amp
from loopwise.train.step.engine import StepEngine, unpack
from loopwise.train.step.nonfinite import NonFiniteGuard, NonFiniteLossError
from loopwise.train.step.oom import OutOfMemoryStop


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, dict[str, Any]]] = []

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Any = None) -> None:
        self.items.append((kind, level, message, dict(data or {})))

    def kinds(self) -> list[str]:
        return [k for k, *_ in self.items]


class OOMOnLargeBatches(torch.nn.Module):
    """A CPU model that fails like a GPU out of memory on batches above ``limit`` rows."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated, {len(x)} rows)")
        out: torch.Tensor = self.lin(x)
        return out


def engine(model: torch.nn.Module, *, loss_fn: Any = None, clip: float | None = None,
           max_nonfinite: int = 3, events: Events | None = None,
           max_oom_skips: int = 5) -> StepEngine:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return StepEngine(model, opt, loss_fn or torch.nn.MSELoss(), device=torch.device("cpu"),
                      amp=Amp("cpu", enabled=False), grad_clip=clip,
                      guard=NonFiniteGuard(max_nonfinite), events=events,
                      max_oom_skips=max_oom_skips)


def batch(rows: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(rows)
    return torch.randn(rows, 4, generator=g), torch.randn(rows, 1, generator=g)


def test_oom_batch_is_retried_in_halves_with_the_same_update() -> None:
    torch.manual_seed(0)
    small = OOMOnLargeBatches(limit=4)
    plain = OOMOnLargeBatches(limit=100)
    plain.load_state_dict(small.state_dict())
    events = Events()
    a, b = engine(small, events=events), engine(plain)
    data = batch(8)
    assert a.train_step(data) is True
    assert b.train_step(data) is True
    assert small.sizes == [8, 4, 4]  # whole batch failed, then two halves
    for p, q in zip(small.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # accumulation in halves == the whole batch
    assert a.drain().losses == pytest.approx(b.drain().losses)
    assert events.kinds() == ["oom", "oom_recovered"]
    _, level, message, data_ = events.items[0]
    assert level == "warning" and data_ == {"step": 0, "batch_size": 8}
    assert "out of memory on a batch of 8 at step 0; retrying it in two halves" in message


def test_batch_is_skipped_when_halves_fail_too() -> None:
    model = OOMOnLargeBatches(limit=3)
    before = [p.detach().clone() for p in model.parameters()]
    events = Events()
    eng = engine(model, events=events)
    assert eng.train_step(batch(8)) is False
    assert eng.skipped == 1 and eng.step == 1
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    assert all(p.grad is None for p in model.parameters())  # nothing half-accumulated kept
    assert events.kinds() == ["oom", "oom_skipped"]
    assert "skipped: out of memory even in halves; lower batch_size" in events.items[1][2]
    assert eng.drain().steps == []  # a skipped step records no loss


def test_single_row_oom_cannot_be_split() -> None:
    events = Events()
    eng = engine(OOMOnLargeBatches(limit=0), events=events)
    assert eng.train_step(batch(1)) is False
    assert "it cannot be split" in events.items[0][2]
    assert events.kinds() == ["oom", "oom_skipped"]


def test_oom_skips_in_a_row_stop_with_a_clear_oom_error() -> None:
    model = OOMOnLargeBatches(limit=3)
    eng = engine(model, events=Events(), max_oom_skips=3)
    assert eng.train_step(batch(8)) is False
    assert eng.train_step(batch(3)) is True  # a batch that trains resets the count
    assert eng.train_step(batch(8)) is False and eng.train_step(batch(8)) is False
    with pytest.raises(OutOfMemoryStop) as caught:
        eng.train_step(batch(8))
    assert str(caught.value) == (
        "out of memory on 3 batches in a row, steps 2 to 4, even split in halves: training "
        "stopped. Lower batch_size (the last batch had 8 rows) or the model's memory use; "
        "max_oom_skips (now 3) sets how many batches in a row may be skipped")
    assert isinstance(caught.value, torch.OutOfMemoryError)  # caught where OOMs are caught


def test_an_epoch_of_nothing_but_oom_skips_is_an_error() -> None:
    eng = engine(OOMOnLargeBatches(limit=0), max_oom_skips=10)
    eng.end_epoch(0)  # an empty epoch is not an OOM
    for _ in range(2):
        assert eng.train_step(batch(4)) is False
    with pytest.raises(OutOfMemoryStop, match=r"^out of memory on every batch of the epoch "
                                              r"\(2\), steps 0 to 1, even split in halves: "
                                              r"training stopped. Lower batch_size \(the last "
                                              r"batch had 4 rows\) or the model's memory use$"):
        eng.end_epoch(2)
    fine = engine(OOMOnLargeBatches(limit=3), max_oom_skips=10)
    fine.train_step(batch(8))
    fine.train_step(batch(2))
    fine.end_epoch(2)  # one batch trained: the epoch stands
    with pytest.raises(ValueError, match="max_oom_skips must be an int >= 1"):
        engine(OOMOnLargeBatches(limit=3), max_oom_skips=0)


def test_other_errors_are_not_swallowed() -> None:
    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch in layer 3")

    model = Broken()
    model.p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(RuntimeError, match="shape mismatch in layer 3"):
        engine(model).train_step(batch())


def nan_on(steps: set[int]) -> Any:
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(out, y)
        calls["n"] += 1
        return loss * float("nan") if calls["n"] - 1 in steps else loss

    return loss_fn


def test_nonfinite_loss_skips_the_step_and_records_an_event() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    events = Events()
    eng = engine(model, loss_fn=nan_on({1}), events=events)
    assert eng.train_step(batch()) is True
    after_first = [p.detach().clone() for p in model.parameters()]
    assert eng.train_step(batch()) is False  # NaN: no backward, no optimizer step
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), after_first, strict=True))
    assert eng.train_step(batch()) is True
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert events.kinds() == ["nonfinite_loss"]
    assert events.items[0][2] == "loss was nan at step 1; step skipped"
    assert eng.drain().steps == [0, 2]
    assert eng.guard.total == 1 and eng.guard.in_row == 0


def test_n_nonfinite_losses_in_a_row_stop_training() -> None:
    eng = engine(torch.nn.Linear(4, 1), loss_fn=nan_on({0, 1, 2, 3}), max_nonfinite=3)
    eng.train_step(batch())
    eng.train_step(batch())
    with pytest.raises(NonFiniteLossError, match="NaN or infinite for 3 steps in a row, up to "
                                                 "step 2"):
        eng.train_step(batch())


def test_guard_off_lets_nan_through() -> None:
    model = torch.nn.Linear(4, 1)
    eng = engine(model, loss_fn=nan_on({0}), max_nonfinite=0)
    assert eng.train_step(batch()) is True
    assert not torch.isfinite(model.weight).all()


def test_gradient_norm_is_recorded_and_clipped() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    reference = torch.nn.Linear(4, 1)
    reference.load_state_dict(model.state_dict())
    x, y = batch()
    torch.nn.functional.mse_loss(reference(x), y).backward()
    expected = torch.sqrt(sum((p.grad ** 2).sum() for p in reference.parameters()))
    eng = engine(model, clip=0.01)
    eng.train_step((x, y))
    drained = eng.drain()
    assert drained.grad_norms == pytest.approx([expected.item()])  # the norm before clipping
    assert expected.item() > 0.01
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert total.item() == pytest.approx(0.01, rel=1e-4)  # the step used clipped gradients


def test_classification_is_detected_and_correct_counts_recorded() -> None:
    model = torch.nn.Linear(4, 3)
    eng = engine(model, loss_fn=torch.nn.CrossEntropyLoss())
    x = torch.randn(6, 4)
    y = model(x).argmax(dim=1).detach()
    eng.train_step((x, y))
    assert eng.classification is True
    assert eng.drain().correct == [6]
    assert engine(torch.nn.Linear(4, 1)).classification is None  # decided on the first batch


def test_batch_shape_errors() -> None:
    with pytest.raises(TypeError, match=r"fit expects batches of \(inputs, targets\).*got a "
                                        r"Tensor\. Make the dataset return pairs"):
        unpack(torch.ones(3))
    with pytest.raises(TypeError, match="got a list of length 1"):
        unpack([torch.ones(3)])
    assert unpack((1, 2, 3)) == ((1, 2), 3)


def test_state_round_trip() -> None:
    eng = engine(torch.nn.Linear(4, 1), loss_fn=nan_on({0}))
    eng.train_step(batch())
    other = engine(torch.nn.Linear(4, 1))
    other.load_state_dict(eng.state_dict())
    assert (other.step, other.skipped, other.guard.in_row) == (1, 1, 1)
    with pytest.raises(KeyError, match="step engine state is missing 'step'"):
        other.load_state_dict({})
