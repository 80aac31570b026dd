"""Generation speed: tokens/s and time to first token, with the KV cache and without, measured in one run.

A random-weight GPT at the default model shape (params.yaml's model section), greedy, fp32, eager, batch 1;
no checkpoint needed. "uncached" recomputes the whole context for every token (the loop generate had
before the cache); both go through stages/lib/model/decoding.py and should give the same tokens.

    python bench/generate.py                                  # block_size 256 and 1024, 512 new tokens
    python bench/generate.py --block-sizes 256 --new-tokens 128 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stages.lib.model.decoding import Sampling, generate  # noqa: E402
from stages.lib.model.gpt import GPT  # noqa: E402
from stages.lib.params import ModelParams  # noqa: E402
from stages.lib.runtime import resolve_device  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_generation(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool,
                     device: torch.device) -> tuple[list[int], float, float]:
    """The new ids, seconds to the first token, and tokens/s over the whole generation."""
    first: list[float] = []
    sync(device)
    start = time.perf_counter()
    out = generate(model, prompt, new_tokens, Sampling(temperature=0), use_cache=use_cache,
                   on_step=lambda _: first.append(time.perf_counter()) if not first else None)
    sync(device)
    elapsed = time.perf_counter() - start
    return out.ids[0], first[0] - start, new_tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--n-head", type=int, default=6)
    parser.add_argument("--n-embd", type=int, default=384)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (0: torch's default); 1 is steadier on a machine other jobs share")
    args = parser.parse_args()
    device = resolve_device(args.device, "--device")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(f"generation: {args.n_layer} layers x {args.n_embd}, {args.n_head} heads, vocab {args.vocab}, fp32, "
          f"{device.type}, {torch.get_num_threads()} threads, greedy, batch 1, "
          f"prompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens")
    for block_size in args.block_sizes:
        torch.manual_seed(0)
        cfg = ModelParams(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, block_size=block_size)
        model = GPT(cfg, args.vocab).to(device).eval()
        prompt = torch.randint(0, args.vocab, (1, args.prompt_tokens), device=device)
        generate(model, prompt, 4, Sampling(temperature=0))  # warm-up: allocator, kernels
        generate(model, prompt, 4, Sampling(temperature=0), use_cache=False)
        ids_cached, ttft_cached, tps_cached = timed_generation(model, prompt, args.new_tokens, True, device)
        ids_plain, ttft_plain, tps_plain = timed_generation(model, prompt, args.new_tokens, False, device)
        same = sum(a == b for a, b in zip(ids_cached, ids_plain))
        print(f"block_size {block_size:>5}: cached {tps_cached:8.1f} tokens/s (first token {ttft_cached * 1e3:6.1f} ms)"
              f" | uncached {tps_plain:7.1f} tokens/s (first token {ttft_plain * 1e3:6.1f} ms)"
              f" | cached/uncached tokens per second: {tps_cached / tps_plain:.1f}x"
              f" | same tokens {same}/{args.new_tokens}")


if __name__ == "__main__":
    main()
