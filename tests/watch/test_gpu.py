"""GPU sources: NVML with a fake NVML module, CUDA_VISIBLE_DEVICES, and torch's allocator."""

from __future__ import annotations

import types

import pytest

from loopwise.watch.gpu import GpuUnavailable, NvmlSource, TorchMemorySource, visible_indices
from loopwise.watch.sources import SourceError

UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"]


@pytest.mark.parametrize(("spec", "expected"), [
    (None, [0, 1, 2]),
    ("1", [1]),
    ("2,0", [2, 0]),
    ("0,7,1", [0]),          # CUDA stops at the first entry naming no device
    ("1,1", [1]),
    ("GPU-bbbb", [1]),       # a unique UUID prefix
    ("cccc-3333,0", [2, 0]),
    ("GPU-zzzz", []),
    ("-1", []),
])
def test_visible_indices_follow_cuda_rules(spec, expected):
    assert visible_indices(spec, UUIDS) == expected


class FakeNVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"error {value}")
        self.value = value


def fake_nvml(*, count=3, unsupported=(), failing=(), init_error=None):
    """A stand-in for pynvml: device k has k*10 % utilisation, (k+1) GiB used of 80 GiB..."""
    calls = {"util": 0, "init": 0, "shutdown": 0}
    n = types.SimpleNamespace(NVMLError=FakeNVMLError, NVML_ERROR_NOT_SUPPORTED=3,
                              NVML_TEMPERATURE_GPU=0, calls=calls)

    def init():
        calls["init"] += 1
        if init_error is not None:
            raise FakeNVMLError(init_error)

    def guard(what, h):
        if what in unsupported:
            raise FakeNVMLError(3)
        if what in failing:
            raise FakeNVMLError(15)

    def util(h):
        calls["util"] += 1
        guard("util", h)
        return types.SimpleNamespace(gpu=10 * h, memory=0)

    def mem(h):
        guard("mem", h)
        return types.SimpleNamespace(used=(h + 1) * 2**30, total=80 * 2**30, free=0)

    def temp(h, sensor):
        guard("temp", h)
        return 40 + h

    def power(h):
        guard("power", h)
        return 250_000 + h * 1000  # milliwatts

    n.nvmlInit = init
    n.nvmlShutdown = lambda: calls.__setitem__("shutdown", calls["shutdown"] + 1)
    n.nvmlDeviceGetCount = lambda: count
    n.nvmlDeviceGetHandleByIndex = lambda k: k
    n.nvmlDeviceGetUUID = lambda h: UUIDS[h].encode()
    n.nvmlDeviceGetName = lambda h: f"Fake GPU {h}"
    n.nvmlDeviceGetUtilizationRates = util
    n.nvmlDeviceGetMemoryInfo = mem
    n.nvmlDeviceGetTemperature = temp
    n.nvmlDeviceGetPowerUsage = power
    return n


def test_reads_the_visible_gpus_under_their_cuda_ordinals_in_sane_units():
    nvml = fake_nvml()
    src = NvmlSource.open(nvml=nvml, visible="2,1")
    assert src.describe() == "cuda:0 Fake GPU 2, cuda:1 Fake GPU 1"
    values = src.read()
    assert values["gpu0_util_pct"] == 20.0 and values["gpu1_util_pct"] == 10.0
    assert values["gpu0_mem_used_mib"] == 3 * 1024.0
    assert values["gpu0_mem_total_mib"] == 80 * 1024.0
    assert values["gpu0_temp_c"] == 42.0
    assert values["gpu0_power_w"] == 252.0
    assert len(values) == 10
    src.close()
    src.close()
    assert nvml.calls["shutdown"] == 1


def test_visible_devices_default_to_the_environment():
    src = NvmlSource.open(nvml=fake_nvml(), environ={"CUDA_VISIBLE_DEVICES": "1"})
    assert src.describe() == "cuda:0 Fake GPU 1"
    assert NvmlSource.open(nvml=fake_nvml(), environ={}).describe().count("cuda:") == 3


def test_an_unsupported_quantity_is_skipped_quietly_and_not_asked_again():
    nvml = fake_nvml(unsupported=("util",))
    src = NvmlSource.open(nvml=nvml, visible="0")
    for _ in range(5):
        values = src.read()
    assert "gpu0_util_pct" not in values and "gpu0_temp_c" in values
    assert nvml.calls["util"] == 1


def test_another_nvml_error_is_a_source_error():
    src = NvmlSource.open(nvml=fake_nvml(failing=("power",)), visible="0")
    with pytest.raises(SourceError, match="NVML failed reading power of cuda:0"):
        src.read()


@pytest.mark.parametrize(("kwargs", "visible", "match"), [
    ({"init_error": 9}, None, r"NVML is unavailable \(error 9\)"),
    ({"count": 0}, None, "NVML found no GPU"),
    ({}, "5", r"no GPU visible to this process \(CUDA_VISIBLE_DEVICES='5'\)"),
])
def test_no_gpu_is_gpu_unavailable_with_the_reason(kwargs, visible, match):
    with pytest.raises(GpuUnavailable, match=match):
        NvmlSource.open(nvml=fake_nvml(**kwargs), visible=visible)


@pytest.mark.parametrize("visible", ["", " ", "-1"])
def test_an_empty_visible_list_never_touches_nvml(visible):
    nvml = fake_nvml()
    with pytest.raises(GpuUnavailable, match="no GPU visible to this process"):
        NvmlSource.open(nvml=nvml, visible=visible)
    assert nvml.calls["init"] == 0


def test_the_real_nvml_on_this_machine_without_a_gpu():
    with pytest.raises(GpuUnavailable, match="no GPU telemetry: NVML is unavailable"):
        NvmlSource.open(environ={})


def fake_torch(initialized):
    cuda = types.SimpleNamespace(
        is_initialized=lambda: initialized, device_count=lambda: 2,
        memory_allocated=lambda i: (i + 1) * 2**20, memory_reserved=lambda i: 4 * 2**20,
        max_memory_allocated=lambda i: 8 * 2**20)
    return types.SimpleNamespace(cuda=cuda)


def test_torch_memory_only_once_cuda_is_initialised():
    assert TorchMemorySource(modules={}).read() == {}
    assert TorchMemorySource(modules={"torch": fake_torch(False)}).read() == {}
    values = TorchMemorySource(modules={"torch": fake_torch(True)}).read()
    assert values == {"gpu0_torch_alloc_mib": 1.0, "gpu0_torch_reserved_mib": 4.0,
                      "gpu0_torch_peak_mib": 8.0, "gpu1_torch_alloc_mib": 2.0,
                      "gpu1_torch_reserved_mib": 4.0, "gpu1_torch_peak_mib": 8.0}


def test_torch_memory_on_this_cpu_machine_reads_nothing_and_initialises_nothing():
    import torch

    assert TorchMemorySource().read() == {}
    assert not torch.cuda.is_initialized()
