"""Training windows drawn from memmapped token shards.

The shards hold one token stream per split; a window is `block_size + 1`
consecutive tokens inside one shard (inputs and shifted targets), so any
model.block_size works without re-tokenizing. Training windows start at
multiples of block_size and are visited in a seeded random order, without
replacement within an epoch; sample k of the whole run is a pure function of
(seed, k), so a resumed run continues exactly where it stopped, and with
several processes rank r takes samples r, r + world, ...
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stages.lib.data.shards import open_tokens, shard_paths
from stages.lib.errors import UserError


class TokenWindows:
    """Non-overlapping windows of block_size + 1 tokens over a split's shards."""

    def __init__(self, shards: list[np.ndarray], block_size: int, name: str):
        self.block_size = block_size
        self.shards = shards
        per_shard = np.array([max(0, (len(s) - 1) // block_size) for s in shards], dtype=np.int64)
        self.first_window = np.concatenate([[0], np.cumsum(per_shard)])  # window index where each shard starts
        self.n_windows = int(self.first_window[-1])
        self.n_tokens = sum(len(s) for s in shards)
        if self.n_windows == 0:
            raise UserError(f"{name} has {max(map(len, shards), default=0)} tokens per shard at most, fewer than "
                            f"model.block_size+1={block_size + 1}: lower model.block_size or add data "
                            f"(for the val split, raise pack.val_fraction)")

    @classmethod
    def from_split(cls, shard_dir: str | Path, split: str, block_size: int) -> "TokenWindows":
        paths = shard_paths(Path(shard_dir), split)
        if not paths:
            raise UserError(f"no {split} shards in {shard_dir}: run the pack stage first (dvc repro)")
        return cls([open_tokens(p) for p in paths], block_size, f"the {split} split")

    def window(self, index: int) -> np.ndarray:
        shard = int(np.searchsorted(self.first_window, index, side="right")) - 1
        start = (index - int(self.first_window[shard])) * self.block_size
        return self.shards[shard][start:start + self.block_size + 1]

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, both [B, T] int64."""
        rows = np.stack([self.window(int(i)).astype(np.int64) for i in indices])  # [B, T+1]
        tokens = torch.from_numpy(rows)
        return tokens[:, :-1], tokens[:, 1:]


class EpochSampler:
    """Sample k -> window index: a fresh seeded permutation of all windows per epoch."""

    def __init__(self, n_windows: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n_windows = n_windows
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._epoch = -1
        self._order = np.empty(0, dtype=np.int64)

    def _window_of(self, k: int) -> int:
        epoch, offset = divmod(k, self.n_windows)
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
            self._epoch = epoch
        return int(self._order[offset])

    def indices(self, step: int, micro_step: int, batch_size: int, grad_accum_steps: int) -> list[int]:
        """Window indices of one micro-batch of this rank; a pure function of its arguments."""
        samples_per_step = batch_size * grad_accum_steps * self.world_size
        first = step * samples_per_step + (micro_step * batch_size) * self.world_size
        return [self._window_of(first + i * self.world_size + self.rank) for i in range(batch_size)]


def evenly_spaced(n_windows: int, count: int) -> list[int]:
    """Fixed validation windows spread over the split: the same ones at every evaluation."""
    count = min(count, n_windows)
    return np.linspace(0, n_windows - 1, count).round().astype(np.int64).tolist()
