"""Conversations as training rows for fine-tuning: one conversation per row, padded.

A row holds one conversation's tokens as inputs and the next tokens as targets; targets are IGNORE where the
next token is not learned (the system and user turns, role tokens) and in the padding, so only assistant
tokens count in the loss. One conversation per row keeps attention inside a conversation without a mask the
tuned attention path lacks. Every row has the length of the longest conversation (rounded up to
ROW_MULTIPLE, at most block_size), not block_size, so short conversations waste little compute, and one
shape for every batch keeps torch.compile from recompiling.
"""
from __future__ import annotations

import numpy as np
import torch

from stages.lib.model.gpt import IGNORE

ROW_MULTIPLE = 32


def row_length(lengths: list[int], block_size: int) -> int:
    """Inputs per row: the longest conversation less one (its last token is only a target), rounded up."""
    longest = max(lengths) - 1
    return min(block_size, -(-longest // ROW_MULTIPLE) * ROW_MULTIPLE)


class ConversationRows:
    """The trainer's data interface (n_windows, n_tokens, batch) over encoded conversations."""

    def __init__(self, encoded: list[tuple[list[int], list[bool]]], row_len: int, pad_id: int):
        """encoded: (ids, learned) pairs, learned[i] saying whether ids[i] is a target to learn;
        each conversation has at most row_len + 1 tokens."""
        n = len(encoded)
        self.inputs = np.full((n, row_len), pad_id, dtype=np.int64)  # [N, T]
        self.targets = np.full((n, row_len), IGNORE, dtype=np.int64)  # [N, T]
        for row, (ids, learned) in enumerate(encoded):
            if len(ids) > row_len + 1:
                raise ValueError(f"a conversation of {len(ids)} tokens does not fit a row of {row_len} + 1")
            ids_arr = np.asarray(ids, dtype=np.int64)
            self.inputs[row, :len(ids) - 1] = ids_arr[:-1]
            self.targets[row, :len(ids) - 1] = np.where(np.asarray(learned[1:]), ids_arr[1:], IGNORE)
        self.n_windows = n
        self.n_tokens = sum(len(ids) for ids, _ in encoded)
        self.learned_tokens = int((self.targets != IGNORE).sum())

    @property
    def fill(self) -> float:
        """The share of row positions holding a conversation's tokens rather than padding."""
        return (self.n_tokens - self.n_windows) / max(self.inputs.size, 1)

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, both [B, T] int64."""
        index = np.asarray(list(indices), dtype=np.int64)
        return torch.from_numpy(self.inputs[index]), torch.from_numpy(self.targets[index])
