"""Scoring text: loss, perplexity and bits per byte.

Bits per byte divides the summed loss (in bits) by the UTF-8 bytes of the
scored text, so models with different tokenizers compare fairly when they
score the same text. So the validation text is chosen by bytes, never by
tokens: `select_documents` takes whole documents in the split's fixed order
(pack writes them in corpus order whatever the tokenizer) until a byte budget.

A held-out file (eval.heldout) is scored whole as one stream, its own split.

Every token of a scored stream is a target: the stream is read after one
end-of-text token of context (a document follows one in training too) and cut
into windows of block_size targets, the last one shorter. Targets that stand
for no bytes (the end-of-text token) are left out of both bpb sums, as in
nanochat's evaluation; the token loss and perplexity count every target.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from stages.lib.data.shards import open_tokens, read_meta, shard_paths
from stages.lib.errors import UserError
from stages.lib.runtime import autocast
from stages.lib.tokens.tokenizer_adapter import Tokenizer

CHUNK = 1 << 22  # tokens read from a memmapped shard at once: bounded memory on big shards


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


# --------------------------------------------------------------------------- what is scored

@dataclass
class Stream:
    """Targets tokens[:end], read after one `context` token (end-of-text) that is not scored."""
    tokens: np.ndarray  # [n] a shard (memmap) or a file's tokens
    end: int
    context: int

    def window(self, start: int, length: int) -> np.ndarray:
        """[length + 1] tokens whose last `length` are the targets tokens[start:start + length]."""
        if start == 0:
            return np.concatenate([[self.context], self.tokens[:length]])
        return self.tokens[start - 1:start + length]


@dataclass
class Documents:
    """A split's shards and, per shard, each document's end offset (exclusive; its end-of-text included)."""
    shards: list[np.ndarray]
    ends: list[np.ndarray]

    @classmethod
    def from_split(cls, shard_dir: str | Path, split: str) -> "Documents":
        paths = shard_paths(Path(shard_dir), split)
        if not paths:
            raise UserError(f"no {split} shards in {shard_dir}: run the pack stage first (dvc repro)")
        shards, ends = [], []
        for path in paths:
            index = path.with_suffix(".docs.npy")
            if not index.is_file():
                raise UserError(f"{index} is missing (the shard's document index): rerun the pack stage")
            shards.append(open_tokens(path))
            ends.append(np.load(index))
            if len(ends[-1]) == 0 or ends[-1][-1] != len(shards[-1]):
                raise UserError(f"{index} does not match {path}: rerun the pack stage")
        return cls(shards, ends)

    def __len__(self) -> int:
        return sum(len(e) for e in self.ends)

    def document(self, index: int) -> np.ndarray:
        """The tokens of document `index` (counted over all shards), end-of-text included."""
        for shard, ends in zip(self.shards, self.ends):
            if index < len(ends):
                return shard[(ends[index - 1] if index else 0):ends[index]]
            index -= len(ends)
        raise IndexError(index)

    def document_bytes(self, token_bytes: np.ndarray) -> np.ndarray:
        """[documents] UTF-8 bytes of each document: its tokens' bytes (the tokenizers here are lossless)."""
        return np.concatenate([_bytes_per_document(s, e, token_bytes) for s, e in zip(self.shards, self.ends)])


def _bytes_per_document(tokens: np.ndarray, ends: np.ndarray, token_bytes: np.ndarray) -> np.ndarray:
    at_ends = np.empty(len(ends), dtype=np.int64)  # running byte count at each document's end
    total, done = 0, 0
    for start in range(0, len(tokens), CHUNK):
        running = total + np.cumsum(token_bytes[tokens[start:start + CHUNK]])  # [chunk]
        finished = int(np.searchsorted(ends, start + len(running), side="right"))  # documents ending in this chunk
        at_ends[done:finished] = running[ends[done:finished] - 1 - start]
        total, done = int(running[-1]), finished
    return np.diff(at_ends, prepend=0)


@dataclass
class Selection:
    streams: list[Stream]  # one per shard holding selected documents
    documents: int
    bytes: int  # UTF-8 bytes of the selected documents: the bpb divisor


def select_documents(docs: Documents, doc_bytes: np.ndarray, eot_id: int, max_bytes: int) -> Selection:
    """The split's first documents, whole, while their bytes stay within max_bytes (0: all; at least one).

    Chosen by bytes in the split's order, so every tokenizer of the same
    clean corpus selects the same documents, hence the same text.
    """
    total = np.cumsum(doc_bytes)  # [documents]
    n = len(total) if max_bytes == 0 else max(1, int(np.searchsorted(total, max_bytes, side="right")))
    streams, left = [], n
    for shard, ends in zip(docs.shards, docs.ends):
        if left == 0:
            break
        take = min(left, len(ends))
        streams.append(Stream(shard, int(ends[take - 1]), eot_id))
        left -= take
    return Selection(streams, n, int(total[n - 1]))


def check_val_bytes(doc_bytes: np.ndarray, meta_path: Path) -> None:
    """Warn when the val shards spell fewer bytes than pack read: then val_bpb is not over the exact text."""
    text_bytes = read_meta(meta_path, "splits.val.bytes")["splits"]["val"]["bytes"]
    if int(doc_bytes.sum()) != text_bytes:
        print(f"warning: the val shards spell {int(doc_bytes.sum()):,} bytes of the {text_bytes:,} bytes of "
              f"validation text (the rest became <unk>): val_bpb is not over exactly that text, nor comparable "
              f"with another tokenizer's; set tokenizer.byte_fallback: true", file=sys.stderr)


def heldout_paths(names: list[str]) -> list[Path]:
    """eval.heldout as paths, refusing two files whose metrics would share a name (heldout_<stem>_bpb)."""
    paths, by_stem = list(map(Path, names)), {}
    for path in paths:
        if not path.is_file():
            raise UserError(f"eval.heldout names {path}, which is not a file: fix the path or remove it")
        if path.stem in by_stem:
            raise UserError(f"eval.heldout names {by_stem[path.stem]} and {path}: both would be reported as "
                            f"heldout_{path.stem}_bpb; rename one")
        by_stem[path.stem] = path
    return paths


def heldout_stream(path: Path, tok: Tokenizer) -> Stream:
    """The file's tokens and a closing end-of-text, every one scored (after one end-of-text of context)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    ids = np.asarray(tok.encode(text) + [tok.eot_id], dtype=np.int64)
    if len(ids) < 2:
        raise UserError(f"eval.heldout file {path} is empty: there is nothing to score; remove it")
    return Stream(ids, len(ids), tok.eot_id)


# --------------------------------------------------------------------------- scoring

def batches(streams: list[Stream], block_size: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs and targets, both [B, T] int64, covering every target of every stream once.

    Windows of block_size targets; a stream's shorter last window is a batch of its own.
    """
    for stream in streams:
        full = list(range(0, stream.end - block_size + 1, block_size))
        groups = [(full[i:i + batch_size], block_size) for i in range(0, len(full), batch_size)]
        if stream.end % block_size:
            groups.append(([stream.end - stream.end % block_size], stream.end % block_size))
        for starts, length in groups:
            rows = torch.from_numpy(np.stack([stream.window(s, length) for s in starts]).astype(np.int64))  # [B, T+1]
            yield rows[:, :-1], rows[:, 1:]


@torch.no_grad()
def score_model(model, streams: list[Stream], block_size: int, batch_size: int, token_bytes: torch.Tensor,
                device: torch.device, dtype: torch.dtype) -> Score:
    score = Score()
    for x, y in batches(streams, block_size, batch_size):  # [B, T]
        with autocast(device, dtype):
            _, losses = model(x.to(device), y.to(device), reduction="none")  # [B*T]
        score.add(losses.float().cpu(), y.reshape(-1), token_bytes)
    return score


def unigram_log_probs(shards: list[np.ndarray], vocab_size: int) -> torch.Tensor:
    """log p(token) from train-split counts with add-one smoothing: the baseline any model must beat."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for shard in shards:
        for start in range(0, len(shard), CHUNK):
            counts += np.bincount(shard[start:start + CHUNK], minlength=vocab_size)[:vocab_size]
    probs = (counts + 1) / (counts.sum() + vocab_size)
    return torch.from_numpy(np.log(probs))


def score_unigram(log_probs: torch.Tensor, streams: list[Stream], token_bytes: torch.Tensor) -> Score:
    """The unigram model on the same targets as score_model (it needs no context)."""
    score = Score()
    for stream in streams:
        for start in range(0, stream.end, CHUNK):
            targets = torch.from_numpy(stream.tokens[start:min(start + CHUNK, stream.end)].astype(np.int64))
            score.add(-log_probs[targets], targets, token_bytes)
    return score
