"""instructions: build the instruction set (chat JSONL) from the clean corpus, split as pack splits it.

A document's conversations go to data/instructions/val.jsonl when pack holds the document out for
validation (pack.seed, pack.val_fraction), else to train.jsonl: the validation instructions ask about
text the model never trained on. The kinds of instruction are described in
stages/lib/data/instruction_builder.py and docs/sft.md.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from stages.lib.atomic import atomic_dir
from stages.lib.data.heldout import require_items, split_sources
from stages.lib.data.instruction_builder import build_split
from stages.lib.errors import run_stage
from stages.lib.params import InstructionsParams, load_params

# Of the pack section, only the two keys of its split: a change to pack.shard_tokens does not rebuild the set.
PARAM_SECTIONS = ["instructions", "pack.seed", "pack.val_fraction"]
IN_DIR = Path("data/interim/clean")
OUT_DIR = Path("data/instructions")


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    ip: InstructionsParams = params["instructions"]
    sources = split_sources(IN_DIR, params["pack.seed"], params["pack.val_fraction"])
    wanted = {"train": ip.n_train, "val": ip.n_val}
    records = {split: build_split(sources[split], n, split, ip) for split, n in wanted.items()}
    require_items(records, "instruction", f"that split's documents in {IN_DIR}",
                  f"they need several lines each (merge.doc_mode: file keeps whole files), or change "
                  f"pack.val_fraction={params['pack.val_fraction']}")

    with atomic_dir(OUT_DIR) as out_dir:
        for split, built in records.items():
            with (out_dir / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                for record in built:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    for split, built in records.items():
        kinds = Counter(r["kind"] for r in built)
        note = "" if len(built) == wanted[split] else \
            f" (instructions.n_{split}={wanted[split]}: the documents hold no more)"
        print(f"instructions: {len(built)} {split} conversations{note} -> {OUT_DIR / split}.jsonl "
              f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")


if __name__ == "__main__":
    run_stage(main)
