"""A checkpoint and its tokenizer as a Hugging Face model folder, written atomically.

The folder holds config.json, generation_config.json, model.safetensors (no pickle), tokenizer.json and
tokenizer_config.json (end-of-text as eos, and the chat template when the tokenizer has the chat tokens).
The weights map onto a built-in transformers architecture (stages/lib/model/hf_export.py); a config none
represents exactly is refused before any other work.
"""
from __future__ import annotations

from pathlib import Path

import torch

from stages.lib.atomic import atomic_dir
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.hf_export import build_hf_model, choose_architecture
from stages.lib.tokens.chat import END, has_chat_tokens
from stages.lib.tokens.hf_tokenizer import check_exportable, save_hf_tokenizer
from stages.lib.tokens.tokenizer_adapter import load_tokenizer


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
    # No max_length: a caller's max_new_tokens then needs no second limit (transformers warns when both are set).
    # The context limit is the config's position count, which generate() in transformers does not enforce.
    hf.generation_config.update(bos_token_id=tok.eot_id, eos_token_id=eos, pad_token_id=tok.eot_id)
    with atomic_dir(out_dir) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        save_hf_tokenizer(tokenizer_dir, tmp, model.cfg.block_size)
    return target.architecture
