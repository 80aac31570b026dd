"""Learning-rate schedules: linear warmup, then cosine decay or warmup-stable-decay."""
from __future__ import annotations

import math


def effective_warmup(warmup: int, max_steps: int) -> int:
    """warmup, or a tenth of the run when warmup would take all of it.

    A smoke test (`-S train.max_steps=20`) should not need a second key to shorten the warmup too.
    """
    return warmup if warmup < max_steps else max_steps // 10


def lr_at(step: int, max_steps: int, base_lr: float, warmup: int, min_ratio: float, schedule: str,
          decay_fraction: float) -> float:
    """Linear warmup, then cosine to base_lr * min_ratio, or warmup-stable-decay (linear decay at the end).

    Steps count from 0, so the last one, max_steps - 1, runs at base_lr * min_ratio.
    """
    warmup = effective_warmup(warmup, max_steps)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    min_lr = base_lr * min_ratio
    last = max_steps - 1
    if schedule == "wsd":
        decay_start = max(warmup, int(max_steps * (1 - decay_fraction)))  # the first step below base_lr
        if step < decay_start:
            return base_lr
        progress = (step - decay_start + 1) / max(1, last - decay_start + 1)
        return base_lr + (min_lr - base_lr) * min(1.0, progress)
    progress = (step - warmup) / max(1, last - warmup)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))
