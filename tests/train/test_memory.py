"""GPU memory helpers on a machine without CUDA: a clear message, nothing to free."""

from __future__ import annotations

import io

import pytest
import torch

from loopwise.train.step.memory import NO_CUDA, clear_gpu_memory, show_gpu_memory_usage

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")


def test_show_gpu_memory_usage_says_cuda_is_missing() -> None:
    out = io.StringIO()
    text = show_gpu_memory_usage(file=out)
    assert text == NO_CUDA
    assert out.getvalue() == "CUDA is not available on this machine: no GPU memory to show " \
                             "(running on the CPU)\n"


def test_clear_gpu_memory_frees_nothing_without_cuda() -> None:
    assert clear_gpu_memory() == 0
