"""export: the best checkpoint and its tokenizer as a Hugging Face model folder, artifacts/hf/.

    python -m stages.export                        # the pretrained model -> artifacts/hf
    python -m stages.export --checkpoint artifacts/checkpoints/sft.pt --out artifacts/hf-sft   # fine-tuned
    python -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('artifacts/hf')"

The folder holds config.json, generation_config.json, model.safetensors (no pickle), tokenizer.json and
tokenizer_config.json (end-of-text as eos). It loads offline with no `trust_remote_code`: the model maps onto
a built-in transformers architecture that computes exactly what ours does (stages/lib/model/hf_export.py
says which for each switch); a config none represents exactly is refused before any work.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from stages.lib.atomic import atomic_dir
from stages.lib.errors import run_stage
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.hf_export import build_hf_model, choose_architecture
from stages.lib.params import ExportParams, load_params
from stages.lib.tokens.chat import END, has_chat_tokens
from stages.lib.tokens.hf_tokenizer import check_exportable, save_hf_tokenizer
from stages.lib.tokens.tokenizer_adapter import load_tokenizer

PARAM_SECTIONS = ["export"]
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
OUT_DIR = Path("artifacts/hf")


def export(checkpoint: Path, tokenizer_dir: Path, out_dir: Path, dtype: str) -> str:
    """Write the Hugging Face folder; returns the transformers architecture used."""
    model, meta = load_checkpoint(checkpoint, "cpu")
    target = choose_architecture(model.cfg)  # refuses unrepresentable configs first
    tok = load_tokenizer(tokenizer_dir)
    check_tokenizer(meta, tok.fingerprint, tokenizer_dir)
    check_exportable(tok)
    hf = build_hf_model(model.state_dict(), model.cfg, tok.vocab_size, tok.eot_id)
    hf.to(getattr(torch, dtype))
    # A chat model ends its answer with <|end|>: generate() stops there too, not only at end-of-text.
    eos = [tok.eot_id, tok.special_id(END)] if has_chat_tokens(tok) else tok.eot_id
    hf.generation_config.update(bos_token_id=tok.eot_id, eos_token_id=eos, pad_token_id=tok.eot_id,
                                max_length=model.cfg.block_size)
    with atomic_dir(out_dir) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        save_hf_tokenizer(tokenizer_dir, tmp, model.cfg.block_size)
    return target.architecture


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
