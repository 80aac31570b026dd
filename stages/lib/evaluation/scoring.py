"""Scoring a token stream: loss, perplexity and bits per byte.

Bits per byte divides the summed loss (in bits) by the UTF-8 bytes of the
scored text, so models with different tokenizers compare fairly. Targets that
stand for no bytes (the end-of-text token) are left out of both sums, as in
nanochat's evaluation; the token loss and perplexity count every target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from stages.lib.training.batches import TokenWindows
from stages.lib.training.runtime import autocast


@dataclass
class Score:
    loss_sum: float = 0.0  # nats over all targets
    targets: int = 0
    byte_loss_sum: float = 0.0  # nats over targets that stand for bytes
    bytes: int = 0

    def add(self, losses: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor) -> None:
        """losses, targets: [N] per-token losses (nats) and target ids."""
        nbytes = token_bytes[targets]
        self.loss_sum += losses.sum().item()
        self.targets += targets.numel()
        self.byte_loss_sum += losses[nbytes > 0].sum().item()
        self.bytes += int(nbytes.sum().item())

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.targets, 1)

    @property
    def ppl(self) -> float:
        return math.exp(min(self.loss, 50.0))

    @property
    def bpb(self) -> float:
        return self.byte_loss_sum / math.log(2) / max(self.bytes, 1)


def window_indices(data: TokenWindows, max_tokens: int) -> list[int]:
    """Windows in order, enough to cover max_tokens targets (0: all)."""
    n = data.n_windows if max_tokens == 0 else min(data.n_windows, math.ceil(max_tokens / data.block_size))
    return list(range(n))


@torch.no_grad()
def score_model(model, data: TokenWindows, windows: list[int], batch_size: int, token_bytes: torch.Tensor,
                device: torch.device, dtype: torch.dtype) -> Score:
    score = Score()
    for i in range(0, len(windows), batch_size):
        x, y = data.batch(windows[i:i + batch_size])  # [B, T]
        with autocast(device, dtype):
            _, losses = model(x.to(device), y.to(device), reduction="none")  # [B*T]
        score.add(losses.float().cpu(), y.reshape(-1), token_bytes)
    return score


def unigram_log_probs(train: TokenWindows, vocab_size: int) -> torch.Tensor:
    """log p(token) from train-split counts with add-one smoothing: the baseline any model must beat."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for shard in train.shards:
        for start in range(0, len(shard), 1 << 24):  # bounded memory on big shards
            counts += np.bincount(shard[start:start + (1 << 24)], minlength=vocab_size)[:vocab_size]
    probs = (counts + 1) / (counts.sum() + vocab_size)
    return torch.from_numpy(np.log(probs))


def score_unigram(log_probs: torch.Tensor, data: TokenWindows, windows: list[int],
                  token_bytes: torch.Tensor) -> Score:
    score = Score()
    for i in range(0, len(windows), 64):
        _, y = data.batch(windows[i:i + 64])
        targets = y.reshape(-1)
        score.add(-log_probs[targets], targets, token_bytes)
    return score
