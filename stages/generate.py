"""generate: sample text from a trained checkpoint.

    python -m stages.generate --checkpoint artifacts/checkpoints/model.pt \
        --prompt "ROMEO:" --max-new-tokens 200 --temperature 0.7 --top-k 40
"""
from __future__ import annotations

import argparse

import torch

from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.errors import UserError, run_stage
from stages.lib.training.runtime import resolve_device
from stages.lib.tokens.tokenizer_adapter import load_tokenizer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sample text from a trained checkpoint.")
    parser.add_argument("--checkpoint", default="artifacts/checkpoints/model.pt")
    parser.add_argument("--tokenizer", default="artifacts/tokenizer",
                        help="tokenizer folder the model was trained with")
    parser.add_argument("--prompt", default="", help="text to continue (empty: start a new document)")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=40, help="0 is no limit")
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.max_new_tokens < 0 or args.temperature < 0 or args.top_k < 0:
        raise UserError("--max-new-tokens, --temperature and --top-k must be >= 0")
    if args.num_samples < 1:
        raise UserError(f"--num-samples={args.num_samples} must be >= 1")
    device = resolve_device(args.device, "--device")
    model, meta = load_checkpoint(args.checkpoint, device)
    tok = load_tokenizer(args.tokenizer)
    check_tokenizer(meta, tok.fingerprint, args.tokenizer)

    generator = torch.Generator(device=device).manual_seed(args.seed)
    prompt_ids = tok.encode(args.prompt) if args.prompt else [tok.eot_id]
    for i in range(args.num_samples):
        idx = torch.tensor([prompt_ids], device=device)
        out = model.generate(idx, args.max_new_tokens, args.temperature, args.top_k, generator=generator)
        if args.num_samples > 1:
            print(f"--- sample {i + 1}")
        print(tok.decode(out[0].tolist()))


if __name__ == "__main__":
    run_stage(main)
