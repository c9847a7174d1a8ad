"""CUDA checks: fp16 AMP with GradScaler, NVML telemetry, no per-step device sync, OOM recovery,
pinned async checkpoints. Skipped where no CUDA device is present (CI); run on a GPU machine:

    PYTHONPATH=src python -m pytest -q tests/gpu

"No per-step sync" is asserted with ``torch.cuda.set_sync_debug_mode("error")``: inside the
checked region any operation that synchronises the host with the device raises.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise import CheckpointManager, TrainingConfig, TrainingMonitor, TrainingSession, fit
from loopwise.record import RunReader
from loopwise.record.active import end_active_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _NoSync:
    """Any host-device synchronisation inside the block raises (CUDA's sync debug mode)."""

    def __enter__(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")

    def __exit__(self, *exc: Any) -> None:
        torch.cuda.set_sync_debug_mode("default")


def _data(n: int = 512, d: int = 16, classes: int | None = None) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = (torch.randint(0, classes, (n,), generator=g) if classes
         else x[:, :1] * 2.0 + 0.1 * torch.randn(n, 1, generator=g))
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                      generator=torch.Generator().manual_seed(1))


def test_monitor_log_of_cuda_tensors_never_syncs_between_refreshes(tmp_path: Path) -> None:
    model = torch.nn.Linear(16, 1).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = [(x.cuda(), y.cuda()) for x, y in _data()]
    monitor = TrainingMonitor(batches, root=tmp_path, file=io.StringIO(), system=False,
                              mininterval=3600.0)
    it = iter(monitor)
    next(it)  # the first step refreshes (nothing pending): outside the checked region
    with _NoSync():
        for _ in range(10):
            x, y = next(it)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            monitor.log({"loss": loss, "scaled": loss * 2})
    for _ in it:
        pass
    assert monitor.averages()["loss"] > 0  # read once, in one transfer, at the end
    run = monitor.run
    assert run is not None
    end_active_run()
    assert list(RunReader(run.path).series("loss").steps) == list(range(2, 12))


def test_session_update_with_cuda_tensors_never_syncs(tmp_path: Path) -> None:
    session = TrainingSession("M", 1, 20, 0, root=tmp_path, system=False, file=io.StringIO())
    session.start_training()
    session.start_epoch(1)
    session.update_training_progress(1, torch.tensor(1.0, device="cuda"))
    with _NoSync():
        for step in range(2, 20):
            loss = torch.rand((), device="cuda")
            session.update_training_progress(step, loss, accuracy=loss / 2,
                                             metrics={"grad_norm": loss * 3})
    session.update_training_progress(20, 0.5)
    session.finish_training_epoch()
    assert session.run is not None and session.run.closed
    assert len(RunReader(session.run.path).series("loss")) == 20


def test_fit_fp16_amp_with_grad_scaler_trains_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    cfg = TrainingConfig(epochs=3, use_mixed_precision=True, device="cuda", learning_rate=1e-2)
    result = fit(model, _data(), loss_fn=torch.nn.MSELoss(), val_loader=_data(128), config=cfg,
                 root=tmp_path, name="amp", plots=False, progress=False)
    assert result.status == "finished"
    assert result.train_losses[-1] < result.train_losses[0]
    assert all(math.isfinite(v) for v in result.val_losses)
    assert next(model.parameters()).device.type == "cuda"
    state = CheckpointManager(tmp_path / "amp" / "checkpoints").load_latest()
    assert state is not None
    amp_state = state["engine"]["amp"]
    assert amp_state, "the GradScaler state is saved with the checkpoint"
    more = TrainingConfig(epochs=5, use_mixed_precision=True, device="cuda", learning_rate=1e-2)
    with pytest.raises(ValueError, match="another config"):
        fit(model, _data(), loss_fn=torch.nn.MSELoss(), val_loader=_data(128), config=more,
            root=tmp_path, name="amp", plots=False, progress=False)


def test_fit_step_path_does_not_sync_per_step() -> None:
    from loopwise.train.step.amp import Amp
    from loopwise.train.step.engine import StepEngine
    from loopwise.train.step.nonfinite import NonFiniteGuard

    model = torch.nn.Linear(16, 1).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    device = torch.device("cuda")
    engine = StepEngine(model, opt, torch.nn.MSELoss(), device=device,
                        amp=Amp(device, enabled=True), grad_clip=None,
                        guard=NonFiniteGuard(10), events=None)
    batches = [(x.cuda(), y.cuda()) for x, y in _data()]
    engine.train_step(batches[0])  # first step: lazy init, outside the checked region
    engine.drain()
    with _NoSync():
        for batch in batches[1:11]:
            engine.train_step(batch)
    drained = engine.drain()  # one read of the window
    assert len(drained.losses) == 10 and all(math.isfinite(v) for v in drained.losses)


def test_nvml_telemetry_reaches_the_record(tmp_path: Path) -> None:
    from loopwise.watch.gpu import NvmlSource

    source = NvmlSource.open()
    sample = source.read()
    assert sample["gpu0_mem_total_mib"] > 1000
    assert 0 <= sample["gpu0_util_pct"] <= 100
    assert sample["gpu0_temp_c"] > 0
    monitor = TrainingMonitor(range(3), root=tmp_path, file=io.StringIO())
    list(monitor)
    run = monitor.run
    assert run is not None
    end_active_run()
    names = {name for _, name, _ in RunReader(run.path).system()}
    assert {"gpu0_util_pct", "gpu0_mem_used_mib", "gpu0_temp_c"} <= names


def test_a_real_cuda_oom_in_one_batch_is_recovered(tmp_path: Path) -> None:
    free, _ = torch.cuda.mem_get_info()
    calls = {"n": 0}

    class Hungry(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(16, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            if calls["n"] == 3 and self.training:  # one batch asks for more than the card has
                torch.empty(int(free * 2), dtype=torch.uint8, device=x.device)
            return self.lin(x)

    result = fit(Hungry(), _data(), loss_fn=torch.nn.MSELoss(),
                 config=TrainingConfig(epochs=1, device="cuda"), root=tmp_path, name="oom",
                 plots=False, progress=False)
    assert result.status == "finished" and math.isfinite(result.train_losses[0])
    events = RunReader(tmp_path / "oom").events()
    assert any("oom" in e.kind for e in events), [e.kind for e in events]


def test_async_checkpoint_of_cuda_state_uses_pinned_snapshots(tmp_path: Path) -> None:
    model = torch.nn.Linear(1024, 1024).cuda()
    manager = CheckpointManager(tmp_path / "ck", keep_last=2, async_save=True)
    manager.save({"model": model.state_dict()}, step=1)
    with torch.no_grad():
        model.weight.add_(1.0)  # changed right after the save: the snapshot must be the old one
    manager.wait()
    loaded = manager.load_latest()
    manager.close()
    assert loaded is not None
    saved = loaded["model"]["weight"]
    assert saved.device.type == "cpu"
    assert torch.allclose(saved + 1.0, model.weight.detach().cpu())


def test_histograms_and_images_of_cuda_tensors_never_sync_the_caller(tmp_path: Path) -> None:
    """A CUDA tensor logged as a histogram (also a large one and a model's weights and
    gradients) and as an image, under sync debug mode "error": the caller only starts the
    copies; the media thread waits for them by polling an event, and bins what landed."""
    from loopwise.watch.hostcopy import model_histograms

    model = torch.nn.Linear(64, 8).cuda()
    model(torch.randn(32, 64, device="cuda")).square().mean().backward()
    big = torch.randn(10_000_000, device="cuda")
    pixels = torch.full((8, 12, 3), 200, dtype=torch.uint8, device="cuda")
    monitor = TrainingMonitor(range(3), file=io.StringIO(), root=tmp_path, system=False,
                              health=False)
    for i in monitor:
        with _NoSync():
            monitor.log_histogram("activations", big * (i + 1))
            monitor.log_histogram("half", big[:1000].half())
            monitor.log_image("pixels", pixels)
            if monitor.run is not None:
                model_histograms(monitor.run, model, step=i + 1)
    monitor.close()
    assert monitor.run is not None
    reader = RunReader(monitor.run.path)
    points = reader.histograms("activations")
    assert len(points) == 3 and all(p.histogram.total == 10_000_000 for p in points)
    expected = big.cpu().double()
    assert points[0].histogram.sum == pytest.approx(float(expected.sum()), abs=1.0)
    assert points[2].histogram.hi == pytest.approx(3 * float(expected.max()), rel=1e-6)
    assert reader.histograms("half")[0].histogram.total == 1000
    assert (reader.images("pixels")[0].width, reader.images("pixels")[0].height) == (12, 8)
    assert {"weights/weight", "grads/weight", "weights/bias", "grads/bias"} <= set(
        reader.histogram_names())
    end_active_run()
