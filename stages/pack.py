"""pack: tokenize the clean documents into train/val token shards.

Each document goes wholly to train or val by a seeded hash of its id, so no
document straddles the split and the split is stable as the corpus grows.
Documents are encoded in batches by the tokenizer library's parallel batch
encoder, in background threads while earlier batches are written; memory
stays bounded by a few batches. With pack.engine: ray the batches are encoded
by Ray Data tasks instead; the shards are the same.

Outputs data/shards/{train,val}-NNNNN.bin (+ .docs.npy), data/shards/meta.json,
metrics/pack.json.
"""
from __future__ import annotations

import collections
import concurrent.futures
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from stages.lib.atomic import atomic_dir, write_json
from stages.lib.data.documents import iter_batches
from stages.lib.data.packing import Encoded, encode
from stages.lib.errors import UserError, run_stage
from stages.lib.params import PackParams, load_params
from stages.lib.data.shards import ShardWriter
from stages.lib.data.split import is_val
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer

PARAM_SECTIONS = ["pack"]
IN_DIR = Path("data/interim/clean")
TOKENIZER_DIR = Path("artifacts/tokenizer")
OUT_DIR = Path("data/shards")
METRICS = Path("metrics/pack.json")
BATCH_CHARS = 4 << 20  # text encoded per batch
SPLITS = ("train", "val")
ENCODE_AHEAD = 2  # batches encoding at once


def split_batches(params: PackParams) -> Iterator[dict[str, list[str]]]:
    """Batches of document texts, routed to train or val by a hash of the document id."""
    batch: dict[str, list[str]] = {split: [] for split in SPLITS}
    size = 0
    for record_batch in iter_batches(IN_DIR):
        cols = record_batch.to_pydict()
        for doc_id, text in zip(cols["id"], cols["text"]):
            split = "val" if is_val(doc_id, params.seed, params.val_fraction) else "train"
            batch[split].append(text)
            size += len(text)
            if size >= BATCH_CHARS:
                yield batch
                batch, size = {split: [] for split in SPLITS}, 0
    if any(batch.values()):  # (empty documents add no size but are documents all the same)
        yield batch


def encoded_batches(tok: Tokenizer, params: PackParams) -> Iterator[dict[str, Encoded]]:
    """Encoded batches in order, by the engine pack.engine names.

    local: ENCODE_AHEAD batches encoding at once in threads. The tokenizer
    releases the GIL and spreads a batch over all cores; with two batches in
    flight the cores stay busy across batch boundaries, while the main thread
    reads documents and writes shards.
    ray: one row group per Ray Data task, the same `encode` (stages/lib/engines/ray_pack.py).
    """
    if params.engine == "ray":
        from stages.lib.engines import ray_pack  # Ray is imported only when asked for
        yield from ray_pack.encoded_batches(IN_DIR, TOKENIZER_DIR, params)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=ENCODE_AHEAD) as pool:
        pending: collections.deque = collections.deque()
        for batch in split_batches(params):
            pending.append(pool.submit(lambda b: {s: encode(tok, b[s]) for s in SPLITS}, batch))
            if len(pending) > ENCODE_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def main() -> None:
    params: PackParams = load_params(PARAM_SECTIONS)["pack"]
    tok = load_tokenizer(TOKENIZER_DIR)
    split_bytes, unknown = dict.fromkeys(SPLITS, 0), 0

    with atomic_dir(OUT_DIR) as out_dir:
        writers = {s: ShardWriter(out_dir, s, tok.vocab_size, params.shard_tokens) for s in SPLITS}
        progress = tqdm(desc="pack", unit="tok", unit_scale=True)
        for encoded in encoded_batches(tok, params):
            for split, batch in encoded.items():
                writers[split].write_documents(batch.flat, batch.lengths)
                split_bytes[split] += batch.text_bytes
                unknown += batch.unknown
                progress.update(len(batch.flat))
        progress.close()
        for writer in writers.values():
            writer.close()

        counts = {s: (writers[s].total_documents, writers[s].total_tokens) for s in SPLITS}
        if counts["train"][0] == 0 or counts["val"][0] == 0:
            empty = "train" if counts["train"][0] == 0 else "val"
            raise UserError(f"the {empty} split is empty ({counts['train'][0]} train and {counts['val'][0]} val "
                            f"documents): add documents, change pack.val_fraction={params.val_fraction}, "
                            f"or use merge.doc_mode=paragraph to get more, smaller documents")
        meta = {
            "format_version": 1,
            "tokenizer_fingerprint": tok.fingerprint,
            "tokenizer_kind": tok.kind,
            "vocab_size": tok.vocab_size,
            "eot_id": tok.eot_id,
            "dtype": writers["train"].dtype.name,
            "splits": {s: {"documents": counts[s][0], "tokens": counts[s][1], "bytes": split_bytes[s],
                           "shards": writers[s].index} for s in SPLITS},
        }
        write_json(out_dir / "meta.json", meta)

    write_json(METRICS, {f"{s}_{k}": meta["splits"][s][k] for s in SPLITS for k in ("documents", "tokens", "bytes")})
    if unknown:
        print(f"warning: {unknown:,} tokens are <unk>, text the tokenizer cannot spell and the model never sees: "
              f"set tokenizer.byte_fallback: true", file=sys.stderr)
    print(f"pack: {counts['train'][1]:,} train and {counts['val'][1]:,} val tokens "
          f"({counts['train'][0]} and {counts['val'][0]} documents)")


if __name__ == "__main__":
    run_stage(main)
