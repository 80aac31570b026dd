"""Will a training config fit in memory? Estimated before anything is allocated.

Without this check a config that cannot fit (say model.block_size=100000) is
killed by the kernel's out-of-memory killer with no word from the project,
often after minutes of compilation. `check_fits` refuses it up front with one
line naming the keys and the estimate.

The estimate counts what dominates a training step:
- model state: fp32 weights, their gradients and AdamW's two moments, 16 bytes
  per parameter (FSDP shards them across processes);
- activations kept for the backward pass: about ACTIVATION_BYTES per token, per
  layer, per channel (only each layer's input with gradient checkpointing);
- attention scores [B, H, T, T] per layer, where they are materialized (the
  CPU training path in gpt.causal_attention; flash kernels keep none);
- the logits and the loss's saved gradient, [B*T, vocab] several times over.

The coefficients were measured on the CPU (peak RSS of two eager fp32 and
bf16 training steps, 6-12 layers, 384-768 channels, T 256-2048, vocab 512 and
8192) and then rounded down, so the estimate is a floor: a config refused
here could not have run, and one that passes may still be tight.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from stages.lib.errors import UserError
from stages.lib.model.gpt import GPT, attention_is_materialized
from stages.lib.params import ModelParams, TrainParams

STATE_BYTES = 16  # per parameter: fp32 weight, gradient, AdamW exp_avg and exp_avg_sq
ACTIVATION_BYTES = {4: 96, 2: 64}  # per token, layer and channel, by activation element size (measured 103-127, 70+)
SCORE_BYTES = {4: 5, 2: 3}  # per attention score element kept for backward (measured 5.7-7.4 in fp32)
LOGIT_BYTES = 16  # per logit element: the logits, their fp32 copy, the loss's saved gradient (measured ~19)
SCORING_LOGIT_BYTES = 8  # per logit element without a backward pass: the logits and their fp32 copy
SCORING_ACTIVATION_BYTES = 16  # per token and channel of one layer's forward pass (the MLP's hidden width)
GiB = 1 << 30


@dataclass
class Estimate:
    state: int
    activations: int
    attention: int
    logits: int

    @property
    def total(self) -> int:
        return self.state + self.activations + self.attention + self.logits

    def describe(self) -> str:
        parts = {"weights and optimizer": self.state, "activations": self.activations,
                 "attention scores": self.attention, "logits": self.logits}
        return ", ".join(f"{name} {size / GiB:.1f} GiB" for name, size in parts.items() if size >= GiB / 20)


def count_params(cfg: ModelParams, vocab_size: int) -> int:
    """Parameters of the model, counted on the meta device: no memory is allocated."""
    with torch.device("meta"):
        return sum(p.numel() for p in GPT(cfg, vocab_size).parameters())


def estimate(cfg: ModelParams, tp: TrainParams, vocab_size: int, dtype: torch.dtype, device: torch.device,
             world_size: int = 1) -> Estimate:
    """Bytes one training process needs at its peak, at least."""
    B, T, L, C, H = tp.batch_size, cfg.block_size, cfg.n_layer, cfg.n_embd, cfg.n_head
    tokens = B * T
    elem = 2 if dtype in (torch.bfloat16, torch.float16) else 4
    state = STATE_BYTES * count_params(cfg, vocab_size)
    if tp.strategy == "fsdp" and world_size > 1:
        state //= world_size
    per_layer = tokens * C * ACTIVATION_BYTES[elem]
    # Checkpointing keeps each layer's input and recomputes one layer at a time in the backward pass.
    activations = L * tokens * C * elem + per_layer if tp.grad_checkpointing else L * per_layer
    attention = 0
    if attention_is_materialized(device, B, H, T, training=True):
        attention = (1 if tp.grad_checkpointing else L) * B * H * T * T * SCORE_BYTES[elem]
    logits = tokens * vocab_size * LOGIT_BYTES
    return Estimate(state, activations, attention, logits)


def _cgroup_limit() -> int | None:
    """What the container may still use (cgroup v2), if it is limited."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def available_bytes(device: torch.device) -> int:
    """Memory the run can still take on `device`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    free = psutil.virtual_memory().available
    limit = _cgroup_limit()
    return free if limit is None else min(free, limit)


def check_fits(cfg: ModelParams, tp: TrainParams, vocab_size: int, dtype: torch.dtype, device: torch.device,
               world_size: int = 1, section: str = "train") -> Estimate:
    """Raise a UserError naming the keys when the config cannot fit in what the device has left."""
    need = estimate(cfg, tp, vocab_size, dtype, device, world_size)
    have = available_bytes(device)
    if need.total > have:
        raise UserError(
            f"model.block_size={cfg.block_size} with {section}.batch_size={tp.batch_size}, model.n_layer="
            f"{cfg.n_layer} and model.n_embd={cfg.n_embd} needs at least {need.total / GiB:.1f} GiB "
            f"({need.describe()}) but {device.type} has {have / GiB:.1f} GiB free: lower {section}.batch_size "
            f"(raise {section}.grad_accum_steps to keep the tokens per step), model.block_size or the model size, "
            f"or set train.grad_checkpointing: true")
    return need


def scoring_bytes(cfg: ModelParams, vocab_size: int, rows: int, tokens: int) -> int:
    """Bytes one forward pass over [rows, tokens] without gradients needs besides the weights, at least."""
    return rows * tokens * (vocab_size * SCORING_LOGIT_BYTES + cfg.n_embd * SCORING_ACTIVATION_BYTES)


def kv_cache_bytes(cfg: ModelParams, rows: int, elem: int = 4) -> int:
    """The decoding cache of `rows` sequences: keys and values of every layer, preallocated to block_size."""
    return rows * cfg.n_layer * 2 * cfg.block_size * cfg.n_embd * elem


def check_inference_fits(need: int, device: torch.device, what: str, advice: str) -> None:
    """Raise a UserError (what needs how much, and `advice`: the key or flag to lower) when `need` bytes
    are more than the device has free: an inference that cannot fit is refused instead of killed."""
    have = available_bytes(device)
    if need > have:
        raise UserError(f"{what} needs at least {need / GiB:.1f} GiB but {device.type} has {have / GiB:.1f} GiB "
                        f"free: {advice}")
