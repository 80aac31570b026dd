"""Device, precision and determinism choices, including the GPU ones this CPU machine can only simulate."""
from __future__ import annotations

import pytest
import torch

from stages.lib import runtime


@pytest.fixture
def restore_determinism():
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.utils.deterministic.fill_uninitialized_memory)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.utils.deterministic.fill_uninitialized_memory = saved[2]


def test_auto_precision_is_fp16_on_a_gpu_that_only_emulates_bf16(monkeypatch):
    # torch reports bf16 on V100/T4 unless asked about native support; there flash attention needs fp16.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert runtime.resolve_precision("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert runtime.resolve_precision("auto", torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize("device, warn_only", [("cuda", False), ("cpu", True), ("mps", True)])
def test_determinism_is_strict_on_cuda_only(restore_determinism, device, warn_only):
    # With warn_only, CUDA's flash-attention backward would only warn and stay non-deterministic.
    runtime.make_deterministic(torch.device(device))
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
    assert not torch.utils.deterministic.fill_uninitialized_memory


def test_cpu_has_no_separate_device_generator():
    assert runtime.device_rng_state(torch.device("cpu")) is None
    runtime.set_device_rng_state(torch.zeros(1, dtype=torch.uint8), torch.device("cpu"))  # a no-op, no error
