"""pack: tokenize the clean documents into train/val token shards.

Each document goes wholly to train or val by a seeded hash of its id, so no
document straddles the split and the split is stable as the corpus grows.
Each clean part file is a block with its own shards (block b's are
{split}-{b:05d}.bin, then {split}-{b:05d}-001.bin, ... as they fill), written
by the engine pack.engine names: local, part after part, threads driving the
tokenizer library's parallel batch encoder (stages/lib/engines/local_pack.py);
ray, a Ray task per part (ray_pack.py). The shards do not depend on the
batching, so they are the same.

Outputs data/shards/{train,val}-NNNNN*.bin (+ .docs.npy), data/shards/meta.json,
metrics/pack.json.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from stages.lib.atomic import atomic_dir, write_json
from stages.lib.data.documents import part_files
from stages.lib.data.packing import SPLITS
from stages.lib.data.shards import token_dtype
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
    """The engine pack.engine names: both write shards with the same `write_shards`; Ray loads only if asked."""
    if name == "ray":
        require_ray("pack.engine")
        from stages.lib.engines import ray_pack
        return ray_pack
    from stages.lib.engines import local_pack
    return local_pack


def main() -> None:
    params: PackParams = load_params(PARAM_SECTIONS)["pack"]
    tok = load_tokenizer(TOKENIZER_DIR)
    parts = part_files(IN_DIR)

    with atomic_dir(OUT_DIR) as out_dir:
        counts = engine(params.engine).write_shards(parts, TOKENIZER_DIR, out_dir, params)
        docs = counts.documents
        if docs["train"] == 0 or docs["val"] == 0:
            empty = "train" if docs["train"] == 0 else "val"
            raise UserError(f"the {empty} split is empty ({docs['train']} train and {docs['val']} val "
                            f"documents): add documents, change pack.val_fraction={params.val_fraction}, "
                            f"or use merge.doc_mode=paragraph to get more, smaller documents")
        meta = {
            "format_version": 1,
            "tokenizer_fingerprint": tok.fingerprint,
            "tokenizer_kind": tok.kind,
            "vocab_size": tok.vocab_size,
            "eot_id": tok.eot_id,
            "dtype": token_dtype(tok.vocab_size).name,
            "splits": {s: {"documents": docs[s], "tokens": counts.tokens[s], "bytes": counts.bytes[s],
                           "shards": counts.shards[s]} for s in SPLITS},
        }
        write_json(out_dir / "meta.json", meta)

    write_json(METRICS, {f"{s}_{k}": meta["splits"][s][k] for s in SPLITS for k in ("documents", "tokens", "bytes")})
    if counts.unknown:
        print(f"warning: {counts.unknown:,} tokens are <unk>, text the tokenizer cannot spell and the model never "
              f"sees: set tokenizer.byte_fallback: true", file=sys.stderr)
    print(f"pack: {counts.tokens['train']:,} train and {counts.tokens['val']:,} val tokens "
          f"({docs['train']} and {docs['val']} documents)")


if __name__ == "__main__":
    run_stage(main)
