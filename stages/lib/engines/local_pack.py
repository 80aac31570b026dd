"""pack on this machine: part by part, batches of documents encoded in threads while earlier batches are written.

The tokenizer releases the GIL and spreads a batch over all cores; with
ENCODE_AHEAD batches in flight the cores stay busy across batch boundaries,
while the caller's thread reads documents and writes the part's shards.
Memory stays bounded by a few batches.
"""
from __future__ import annotations

import collections
import concurrent.futures
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from stages.lib.data.documents import part_tables
from stages.lib.data.pack_block import BlockShards, PackCounts
from stages.lib.data.packing import SPLITS, Encoded, encode, split_of
from stages.lib.params import PackParams
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer

BATCH_CHARS = 4 << 20  # text encoded per batch
ENCODE_AHEAD = 2  # batches encoding at once


def split_batches(part: Path, params: PackParams) -> Iterator[dict[str, list[str]]]:
    """Batches of one part file's document texts, each routed to train or val (`split_of`)."""
    batch: dict[str, list[str]] = {split: [] for split in SPLITS}
    size = 0
    for table in part_tables(part, columns=["id", "text"]):
        for record_batch in table.to_batches(max_chunksize=1024):
            cols = record_batch.to_pydict()
            for doc_id, text in zip(cols["id"], cols["text"]):
                batch[split_of(doc_id, params)].append(text)
                size += len(text)
                if size >= BATCH_CHARS:
                    yield batch
                    batch, size = {split: [] for split in SPLITS}, 0
    if any(batch.values()):  # (empty documents add no size but are documents all the same)
        yield batch


def encoded_batches(tok: Tokenizer, batches: Iterator[dict[str, list[str]]]) -> Iterator[dict[str, Encoded]]:
    """Per batch, in order: each split's Encoded."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=ENCODE_AHEAD) as pool:
        pending: collections.deque = collections.deque()
        for batch in batches:
            pending.append(pool.submit(lambda b: {s: encode(tok, b[s]) for s in SPLITS}, batch))
            if len(pending) > ENCODE_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_shards(parts: list[Path], tokenizer_dir: Path, out_dir: Path, params: PackParams) -> PackCounts:
    """Each part file (block b: the b-th) as its own shards in out_dir; the blocks' counts added up in order."""
    tok = load_tokenizer(tokenizer_dir)
    total = PackCounts()
    with tqdm(desc="pack", unit="tok", unit_scale=True) as progress:
        for block, part in enumerate(parts):
            shards = BlockShards(out_dir, block, tok.vocab_size, params.shard_tokens)
            for encoded in encoded_batches(tok, split_batches(part, params)):
                shards.write(encoded)
                progress.update(sum(len(batch.flat) for batch in encoded.values()))
            total.add(shards.close())
    return total
