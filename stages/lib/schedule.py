"""Learning-rate schedules: linear warmup, then cosine decay or warmup-stable-decay."""
from __future__ import annotations

import math


def lr_at(step: int, max_steps: int, base_lr: float, warmup: int, min_ratio: float, schedule: str,
          decay_fraction: float) -> float:
    """Linear warmup, then cosine to base_lr * min_ratio, or warmup-stable-decay (linear decay at the end)."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    min_lr = base_lr * min_ratio
    if schedule == "wsd":
        decay_start = int(max_steps * (1 - decay_fraction))
        if step < decay_start:
            return base_lr
        progress = (step - decay_start) / max(1, max_steps - decay_start)
        return base_lr + (min_lr - base_lr) * min(1.0, progress)
    progress = (step - warmup) / max(1, max_steps - warmup)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))
