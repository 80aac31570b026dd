"""pack: tokenize the clean documents into train/val token shards.

Each document goes wholly to train or val by a seeded hash of its id, so no
document straddles the split and the split is stable as the corpus grows.
The engine pack.engine names encodes the documents in batches, in document
order: local, threads driving the tokenizer library's parallel batch encoder
(stages/lib/engines/local_pack.py); ray, Ray Data tasks (ray_pack.py). The
shards do not depend on the batching, so they are the same.

Outputs data/shards/{train,val}-NNNNN.bin (+ .docs.npy), data/shards/meta.json,
metrics/pack.json.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from stages.lib.atomic import atomic_dir, write_json
from stages.lib.data.packing import SPLITS
from stages.lib.data.shards import ShardWriter
from stages.lib.engines.require import require_ray
from stages.lib.errors import UserError, run_stage
from stages.lib.params import PackParams, load_params
from stages.lib.tokens.tokenizer_adapter import load_tokenizer

PARAM_SECTIONS = ["pack"]
IN_DIR = Path("data/interim/clean")
TOKENIZER_DIR = Path("artifacts/tokenizer")
OUT_DIR = Path("data/shards")
METRICS = Path("metrics/pack.json")


def engine(name: str) -> ModuleType:
    """The engine pack.engine names: both give the same `encoded_batches`; Ray loads only if asked."""
    if name == "ray":
        require_ray("pack.engine")
        from stages.lib.engines import ray_pack
        return ray_pack
    from stages.lib.engines import local_pack
    return local_pack


def main() -> None:
    params: PackParams = load_params(PARAM_SECTIONS)["pack"]
    tok = load_tokenizer(TOKENIZER_DIR)
    split_bytes, unknown = dict.fromkeys(SPLITS, 0), 0

    with atomic_dir(OUT_DIR) as out_dir:
        writers = {s: ShardWriter(out_dir, s, tok.vocab_size, params.shard_tokens) for s in SPLITS}
        progress = tqdm(desc="pack", unit="tok", unit_scale=True)
        for encoded in engine(params.engine).encoded_batches(IN_DIR, TOKENIZER_DIR, params):
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
