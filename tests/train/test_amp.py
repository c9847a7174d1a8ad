"""Mixed precision: bf16 autocast on the CPU changes the compute dtype and training still learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit
from loopwise.train.step.amp import Amp


def test_cpu_autocast_runs_linear_layers_in_bf16() -> None:
    amp = Amp("cpu", enabled=True)
    assert amp.dtype == torch.bfloat16 and amp.scaler is None  # bf16 needs no loss scaling
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with amp.autocast():
        assert layer(x).dtype == torch.bfloat16
    assert layer(x).dtype == torch.float32  # only inside the context
    with Amp("cpu", enabled=False).autocast():
        assert layer(x).dtype == torch.float32


def test_fit_with_amp_on_cpu_computes_in_bf16_and_learns(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    seen: set[torch.dtype] = set()
    model[0].register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    cfg = TrainingConfig(epochs=8, learning_rate=0.01, use_mixed_precision=True, patience=0,
                         lr_patience=0, device="cpu")
    result = fit(model, loader, loss_fn=torch.nn.MSELoss(), config=cfg, root=tmp_path,
                 plots=False, progress=False, system=False)
    assert torch.bfloat16 in seen
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert result.train_losses[-1] < 0.25 * result.train_losses[0]


def test_unsupported_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mixed precision is supported on cpu and cuda, not "
                                         "'meta'; set use_mixed_precision=False"):
        Amp("meta", enabled=True)
    assert Amp("meta", enabled=False).enabled is False  # fine when off
    with pytest.raises(TypeError, match="enabled must be True or False"):
        Amp("cpu", enabled=1)  # type: ignore[arg-type]


def test_state_round_trip_and_mismatch() -> None:
    amp = Amp("cpu", enabled=True)
    state = amp.state_dict()
    Amp("cpu", enabled=True).load_state_dict(state)
    with pytest.raises(ValueError, match="saved with use_mixed_precision=True but this run has "
                                         "use_mixed_precision=False"):
        Amp("cpu", enabled=False).load_state_dict(state)
    with pytest.raises(KeyError, match="AMP state needs 'enabled' and 'scaler'"):
        amp.load_state_dict({})


def test_disabled_amp_steps_like_plain_pytorch() -> None:
    torch.manual_seed(1)
    a = torch.nn.Linear(3, 1)
    b = torch.nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    amp = Amp("cpu", enabled=False)
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    with amp.autocast():
        loss = torch.nn.functional.mse_loss(a(x), y)
    amp.backward(loss)
    amp.unscale_(opt_a)
    amp.step(opt_a)
    torch.nn.functional.mse_loss(b(x), y).backward()
    opt_b.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
