"""Conversations for fine-tuning: read from the instruction files, encoded, and laid out one per padded row.

`read_conversations` encodes every conversation of the files with the chat format; one longer than the
context is a bad record (an error, or skipped with bad_records="skip"), like a malformed one.

A row holds one conversation's tokens as inputs and the next tokens as targets; targets are IGNORE where the
next token is not learned (the system and user turns, role tokens) and in the padding, so only assistant
tokens count in the loss. One conversation per row keeps attention inside a conversation without a mask the
tuned attention path lacks. Every row has the length of the longest conversation (rounded up to
ROW_MULTIPLE, at most block_size), not block_size, so short conversations waste little compute, and one
shape for every batch keeps torch.compile from recompiling.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stages.lib.data.instructions import BadRecord, load_records, reject
from stages.lib.errors import UserError
from stages.lib.model.gpt import IGNORE
from stages.lib.tokens.chat import ChatFormat

ROW_MULTIPLE = 32
UNLABELLED = "unlabelled"  # the kind of a record without a "kind" field


@dataclass
class Conversations:
    messages: list[list[dict]]
    encoded: list[tuple[list[int], list[bool]]]
    kinds: list[str]  # each record's "kind" field (the shipped set names each instruction's kind), or UNLABELLED


def read_conversations(files: list[str], chat: ChatFormat, block_size: int, bad_records: str,
                       key: str) -> Conversations:
    """Every conversation of the files, encoded; `key` is the params key naming the files, for errors."""
    out = Conversations([], [], [])
    for name in files:
        path = Path(name)
        records, counts = load_records(path, bad_records)
        skipped = Counter(counts["skipped"])
        for record in records:
            ids, learned = chat.encode_conversation(record.messages)
            if len(ids) > block_size + 1:
                reject(path, record.number, BadRecord("too_long", f"the conversation is {len(ids)} tokens, longer "
                                                      f"than the model's context of {block_size} + 1"),
                       bad_records, skipped)
                continue
            out.messages.append(record.messages)
            out.encoded.append((ids, learned))
            out.kinds.append(record.kind or UNLABELLED)
        if skipped:
            print(f"sft: {path}: skipped {sum(skipped.values())} records ({dict(skipped)})")
    if not out.encoded:
        raise UserError(f"{key} ({', '.join(files)}) holds no usable conversation: add some")
    return out


def files_digest(files: list[str]) -> str:
    """A digest of the files' names and bytes: part of the resume key, so a state saved on other data is refused."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + Path(name).read_bytes())
    return digest.hexdigest()[:16]


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
