"""Where and how tensors run: device, precision, seeds.

`auto` picks CUDA, then MPS, then CPU; bf16 where the hardware runs it fast
(CUDA with bf16, CPUs with AVX512-BF16 or AMX), fp16 on older GPUs (with a
grad scaler in training), fp32 otherwise.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import random
import sys
from functools import lru_cache

import numpy as np
import torch

from stages.lib.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key}=cuda but no CUDA GPU is visible to torch: set {key}=auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{key}=mps but MPS is not available: set {key}=auto or cpu")
    return torch.device(name)


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device, key: str = "train.precision") -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            # Without including_emulation=False, pre-Ampere GPUs (V100, T4) report bf16: they only emulate it,
            # and flash attention does not run it.
            return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
        if device.type == "cpu" and cpu_has_fast_bf16():
            return torch.bfloat16
        return torch.float32
    dtype = DTYPES[name]
    if dtype == torch.float16 and device.type == "cpu":
        raise UserError(f"{key}=fp16 is not supported on the CPU: use bf16 or fp32")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context: weights stay fp32, matmuls run in `dtype`."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_deterministic(device: torch.device) -> None:
    """Same inputs, same bits: compiled CPU kernels otherwise differ from run to run in the last bits.

    On CUDA the setting is strict: with warn_only the flash-attention backward only warns and
    stays non-deterministic. An op with no deterministic CUDA kernel then stops the run with
    torch's error naming it (train.deterministic=false is the way round). Elsewhere it warns.
    Filling every new tensor with NaN (torch's default under deterministic algorithms) only
    guards against reading memory never written; it cost 6% of a training step here, and
    the same-checkpoint-bytes test checks the result without it.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cuda")
    torch.utils.deterministic.fill_uninitialized_memory = False


def reuse_freed_memory() -> None:
    """Let glibc keep freed memory for the next allocation instead of giving it back to the kernel.

    By default every tensor over 32 MB (the logits, their gradient) is a fresh mmap whose pages
    the kernel zero-fills on first touch: the 65 MB logits matmul took 35 ms that way and 8 ms
    from reused memory (7% of a training step at the default shape). The process keeps its peak
    memory until it exits, which a training run does anyway. A no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # another C library (musl): keep its defaults
        return
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)  # large blocks come from the heap too, so they can be reused
    libc.mallopt(m_trim_threshold, 1 << 30)  # and freed ones stay in the process


def device_rng_state(device: torch.device) -> torch.Tensor | None:
    """The random generator state of this process's accelerator (None on the CPU, whose state is separate)."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type == "mps":
        return torch.mps.get_rng_state()
    return None


def set_device_rng_state(state: torch.Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
