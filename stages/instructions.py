"""instructions: build the instruction set (chat JSONL) from the clean corpus, split as pack splits it.

A document's conversations go to data/instructions/val.jsonl when pack holds the document out for
validation (pack.seed, pack.val_fraction), else to train.jsonl: the validation instructions ask about
text the model never trained on. The kinds of instruction are described in
stages/lib/data/instruction_builder.py and the README (Instruction tuning).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from stages.lib.atomic import atomic_dir
from stages.lib.data.documents import iter_documents
from stages.lib.data.instruction_builder import BuildSettings, build_split
from stages.lib.data.split import train_documents, val_documents
from stages.lib.errors import UserError, run_stage
from stages.lib.params import InstructionsParams, PackParams, load_params

# The pack section is read for its split alone: dvc.yaml lists these two keys, not the section.
PARAM_SECTIONS = ["instructions", "pack.seed", "pack.val_fraction"]
IN_DIR = Path("data/interim/clean")
OUT_DIR = Path("data/instructions")


def main() -> None:
    params = load_params(["instructions", "pack"])
    ip: InstructionsParams = params["instructions"]
    pack: PackParams = params["pack"]
    settings = BuildSettings(ip.n_train, ip.n_val, ip.kinds, ip.max_chars, ip.system_fraction, ip.seed)
    select = {"train": train_documents, "val": val_documents}
    wanted = {"train": ip.n_train, "val": ip.n_val}
    records = {split: build_split(lambda: select[split](iter_documents(IN_DIR), pack.seed, pack.val_fraction),
                                  wanted[split], split, settings)
               for split in select}
    for split, built in records.items():
        if not built:
            raise UserError(f"no {split} instruction could be built from the {split} documents in {IN_DIR}: they "
                            f"need several lines each (merge.doc_mode: file keeps whole files), or change "
                            f"pack.val_fraction={pack.val_fraction}")

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
