"""Training speed: tokens/s, FLOPs per token, achieved FLOP/s and MFU, all measured in one process.

MFU is achieved model FLOP/s divided by the matmul peak measured here, now,
for the same dtype (the best of a few large square matmuls), so the ratio
means the same on any machine. The baseline is a plain nanoGPT-style loop
(learned positions, LayerNorm, GELU, biases) in fp32, eager, at the same shape.

    python bench/train.py                       # the issue's CPU shape, ours vs the fp32 baseline
    python bench/train.py --preset gpt2-125m --steps 50 --device cuda
    python bench/train.py --matmul-share --no-baseline   # where the CPU step's time goes
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stages.lib.model.gpt import GPT  # noqa: E402
from stages.lib.params import ModelParams, TrainParams  # noqa: E402
from stages.lib.runtime import DTYPES, autocast, make_deterministic, resolve_device, reuse_freed_memory  # noqa: E402
from stages.lib.training.optim import build_optimizer  # noqa: E402

PRESETS = {
    "cpu-small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),
    "gpt2-125m": dict(n_layer=12, n_head=12, n_embd=768, block_size=2048),
}


def sync(device: torch.device) -> None:
    """Wait for queued device work: CUDA and MPS run asynchronously, so timings need it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_peak(dtype: torch.dtype, device: torch.device) -> float:
    """Best FLOP/s of large square matmuls in this dtype on this device."""
    sizes = (1024, 2048, 4096) if device.type == "cpu" else (4096, 8192)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        c = torch.empty(n, n, device=device, dtype=dtype)  # the product's memory is allocated once: pure compute
        for _ in range(2):
            torch.mm(a, b, out=c)
        sync(device)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < (1.0 if device.type == "cpu" else 0.5):
            torch.mm(a, b, out=c)
            reps += 1
        sync(device)
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - start))
    return best


def make_step(cfg: ModelParams, vocab: int, batch: int, device: torch.device, dtype: torch.dtype,
              compile_model: bool) -> tuple[Callable[[], None], GPT]:
    """One training step on a fixed random batch: forward, backward, clipping, AdamW."""
    torch.manual_seed(0)
    model = GPT(cfg, vocab).to(device)
    optimizer = build_optimizer(model, TrainParams(learning_rate=3e-4), device)
    run = torch.compile(model) if compile_model else model
    x = torch.randint(0, vocab, (batch, cfg.block_size), device=device)
    y = torch.randint(0, vocab, (batch, cfg.block_size), device=device)

    def step() -> None:
        with autocast(device, dtype):
            _, loss = run(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):  # compilation and warm-up
        step()
    sync(device)
    return step, model


def tokens_per_second(step: Callable[[], None], tokens_per_step: int, steps: int, device: torch.device) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return tokens_per_step * steps / (time.perf_counter() - start)


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_dot_product_flash_attention",
              "aten::_scaled_dot_product_flash_attention_for_cpu",
              "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
              "aten::_scaled_dot_product_flash_attention_backward")


def matmul_share(step: Callable[[], None], device: torch.device, steps: int = 3) -> float:
    """Fraction of a step's CPU time spent inside matmul (and attention) kernels, from torch.profiler.

    All the counted model FLOPs are matmul FLOPs, so achieved FLOP/s / this fraction is the rate
    the matmuls themselves ran at: the MFU the step would reach if everything else took no time.
    """
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
        sync(device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    return matmul / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--matmul-share", action="store_true",
                        help="CPU only: profile a few steps and print the share of time spent in matmuls")
    args = parser.parse_args()

    device = resolve_device(args.device, "--device")
    make_deterministic(device)  # as the train stage does by default
    if device.type == "cpu":
        reuse_freed_memory()  # as the train stage does on the CPU
    dtype = DTYPES[args.precision]
    cfg = ModelParams(**PRESETS[args.preset])
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset} "
          f"{PRESETS[args.preset]}, batch {args.batch}, vocab {args.vocab}")

    peak = matmul_peak(dtype, device)
    step, model = make_step(cfg, args.vocab, args.batch, device, dtype, not args.no_compile)
    tokens_per_step = args.batch * cfg.block_size
    tps, flops = tokens_per_second(step, tokens_per_step, args.steps, device), model.flops_per_token()
    achieved = tps * flops
    print(f"ours      {args.precision} compile={not args.no_compile}: {tps:,.0f} tokens/s, "
          f"{flops / 1e6:.1f} MFLOP/token, {achieved / 1e12:.3f} TFLOP/s; "
          f"{args.precision} matmul peak {peak / 1e12:.3f} TFLOP/s; MFU {achieved / peak:.1%}")
    if args.matmul_share and device.type != "cpu":
        print("matmuls   --matmul-share reads CPU time, so it measures CPU steps only")
    elif args.matmul_share:
        share = matmul_share(step, device)
        print(f"matmuls   {share:.0%} of step time, running at {achieved / share / 1e12:.3f} TFLOP/s: "
              f"MFU {achieved / share / peak:.1%} if nothing else took time")
    del step, model

    if not args.no_baseline:
        base_cfg = dataclasses.replace(cfg, position="learned", norm="layernorm", mlp="gelu", qk_norm=False,
                                       bias=True)
        fp32_peak = matmul_peak(torch.float32, device)
        base_step, base_model = make_step(base_cfg, args.vocab, args.batch, device, torch.float32,
                                          compile_model=False)
        base_tps = tokens_per_second(base_step, tokens_per_step, args.steps, device)
        base_flops = base_model.flops_per_token()
        print(f"baseline  fp32 eager nanoGPT-style: {base_tps:,.0f} tokens/s, "
              f"{base_tps * base_flops / 1e12:.3f} TFLOP/s; fp32 matmul peak {fp32_peak / 1e12:.3f} TFLOP/s; "
              f"MFU {base_tps * base_flops / fp32_peak:.1%}")
        print(f"speedup   ours / baseline tokens per second: {tps / base_tps:.2f}x")


if __name__ == "__main__":
    main()
