"""export: the best checkpoint and its tokenizer as a Hugging Face model folder, artifacts/hf/.

    python -m stages.export                        # the pretrained model -> artifacts/hf
    python -m stages.export --checkpoint artifacts/checkpoints/sft.pt --out artifacts/hf-sft   # fine-tuned
    python -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('artifacts/hf')"

The folder holds config.json, generation_config.json, model.safetensors (no pickle), tokenizer.json and
tokenizer_config.json (end-of-text as eos), written by stages/lib/model/hf_folder.py. It loads offline with no
`trust_remote_code`: the model maps onto a built-in transformers architecture that computes exactly what ours
does (stages/lib/model/hf_export.py says which for each switch); a config none represents exactly is refused
before any work.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from stages.lib.errors import run_stage
from stages.lib.model.hf_folder import export
from stages.lib.params import ExportParams, load_params

PARAM_SECTIONS = ["export"]
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
OUT_DIR = Path("artifacts/hf")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Export a checkpoint as a Hugging Face model folder.")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    params: ExportParams = load_params(PARAM_SECTIONS)["export"]
    architecture = export(args.checkpoint, args.tokenizer, args.out, params.dtype)
    print(f"export: {args.out}/ as {architecture} ({params.dtype}); load it with "
          f"AutoModelForCausalLM.from_pretrained('{args.out}')")


if __name__ == "__main__":
    run_stage(main)
