"""pack on this machine: batches of documents encoded in threads while earlier batches are written.

The tokenizer releases the GIL and spreads a batch over all cores; with
ENCODE_AHEAD batches in flight the cores stay busy across batch boundaries,
while the caller's thread reads documents and writes shards. Memory stays
bounded by a few batches.
"""
from __future__ import annotations

import collections
import concurrent.futures
from pathlib import Path
from typing import Iterator

from stages.lib.data.documents import iter_batches
from stages.lib.data.packing import SPLITS, Encoded, encode, split_of
from stages.lib.params import PackParams
from stages.lib.tokens.tokenizer_adapter import load_tokenizer

BATCH_CHARS = 4 << 20  # text encoded per batch
ENCODE_AHEAD = 2  # batches encoding at once


def split_batches(in_dir: Path, params: PackParams) -> Iterator[dict[str, list[str]]]:
    """Batches of document texts, each routed to train or val (`split_of`)."""
    batch: dict[str, list[str]] = {split: [] for split in SPLITS}
    size = 0
    for record_batch in iter_batches(in_dir):
        cols = record_batch.to_pydict()
        for doc_id, text in zip(cols["id"], cols["text"]):
            batch[split_of(doc_id, params)].append(text)
            size += len(text)
            if size >= BATCH_CHARS:
                yield batch
                batch, size = {split: [] for split in SPLITS}, 0
    if any(batch.values()):  # (empty documents add no size but are documents all the same)
        yield batch


def encoded_batches(in_dir: Path, tokenizer_dir: Path, params: PackParams) -> Iterator[dict[str, Encoded]]:
    """Per batch of the clean documents, in order: each split's Encoded."""
    tok = load_tokenizer(tokenizer_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=ENCODE_AHEAD) as pool:
        pending: collections.deque = collections.deque()
        for batch in split_batches(in_dir, params):
            pending.append(pool.submit(lambda b: {s: encode(tok, b[s]) for s in SPLITS}, batch))
            if len(pending) > ENCODE_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
