"""train: fit the GPT in stages/lib/model.py to the token shards.

The story: read model.* and train.* params, pick device and precision, open
the shards as windows of block_size + 1 tokens, build the model and AdamW,
then loop: a learning rate from the schedule, grad_accum_steps micro-batches
under autocast, gradient clipping, an optimizer step; every eval_interval
steps a validation loss on fixed windows, logged with dvclive, and the best
model so far saved to artifacts/checkpoints/model.pt. metrics/train.json
holds the final and best losses, tokens per second and wall time.
With train.nproc > 1 the same loop runs under torchrun (DDP); rank 0 alone
logs and writes.
"""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from stages.lib import distributed
from stages.lib.atomic import write_json
from stages.lib.batches import EpochSampler, TokenWindows, evenly_spaced
from stages.lib.checkpoint import save_checkpoint
from stages.lib.errors import UserError, run_stage
from stages.lib.model import GPT
from stages.lib.params import ModelParams, TrainParams, load_params
from stages.lib.runtime import autocast, resolve_device, resolve_precision, seed_everything
from stages.lib.schedule import lr_at

PARAM_SECTIONS = ["model", "train"]
SHARD_DIR = Path("data/shards")
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
METRICS = Path("metrics/train.json")
LIVE_DIR = "dvclive/train"


def read_shard_meta() -> dict:
    path = SHARD_DIR / "meta.json"
    if not path.exists():
        raise UserError(f"{path} not found: run the pack stage first (dvc repro)")
    return json.loads(path.read_text())


@torch.no_grad()
def estimate_val_loss(model: torch.nn.Module, val: TokenWindows, windows: list[int], batch_size: int,
                      device: torch.device, dtype: torch.dtype) -> float:
    """Mean loss over the fixed validation windows."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        x, y = val.batch(windows[i:i + batch_size])
        with autocast(device, dtype):
            _, loss = model(x.to(device), y.to(device), reduction="sum")
        total += loss.item()
        count += y.numel()
    model.train()
    return total / count


def maybe_compile(model: torch.nn.Module, wanted: bool, device: torch.device) -> torch.nn.Module:
    """torch.compile where it works: it fuses the many small ops that dominate small models."""
    if not wanted:
        return model
    if device.type == "mps":
        print("warning: train.compile is not supported on MPS; running eager")
        return model
    if device.type == "cpu" and not (shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")):
        print("warning: train.compile on the CPU needs a C++ compiler (g++ or clang++); running eager")
        return model
    return torch.compile(model)


def open_live():
    """dvclive logger for the curves in dvclive/train (dvc.yaml declares them; dvclive must not edit it)."""
    from dvclive import Live

    return Live(LIVE_DIR, dvcyaml=None, save_dvc_exp=False, report=None)


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    cfg: ModelParams = params["model"]
    tp: TrainParams = params["train"]
    if tp.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch_with_torchrun(tp.nproc, "stages.train")

    device = resolve_device(tp.device)
    dist_info = distributed.init_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    dtype = resolve_precision(tp.precision, device)
    seed_everything(tp.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Data: the token stream viewed as windows of block_size + 1.
    meta = read_shard_meta()
    train_data = TokenWindows.from_split(SHARD_DIR, "train", cfg.block_size)
    val_data = TokenWindows.from_split(SHARD_DIR, "val", cfg.block_size)
    sampler = EpochSampler(train_data.n_windows, tp.seed, dist_info.rank, dist_info.world_size)
    val_windows = evenly_spaced(val_data.n_windows, tp.eval_batches * tp.batch_size)

    # Model and optimizer.
    raw_model = GPT(cfg, meta["vocab_size"]).to(device)
    raw_model.grad_checkpointing = tp.grad_checkpointing
    optimizer = raw_model.optimizer(tp.learning_rate, tp.weight_decay, (tp.beta1, tp.beta2), device)
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    model = maybe_compile(raw_model, tp.compile, device)
    if dist_info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist_info.local_rank] if device.type == "cuda" else None)

    tokens_per_step = tp.batch_size * tp.grad_accum_steps * cfg.block_size * dist_info.world_size
    main_rank = dist_info.is_main
    if main_rank:
        print(f"train: {raw_model.num_params() / 1e6:.2f}M non-embedding parameters on {device} ({dtype}), "
              f"{tokens_per_step:,} tokens/step, {train_data.n_tokens:,} train tokens "
              f"({tp.max_steps * tokens_per_step / max(train_data.n_tokens, 1):.2f} epochs)")
    live = open_live() if main_rank else None

    best_val, best_step, train_loss = math.inf, -1, math.nan
    train_time, start = 0.0, time.perf_counter()
    progress = tqdm(range(tp.max_steps), desc="train", unit="step", disable=not main_rank)
    for step in progress:
        lr = lr_at(step, tp.max_steps, tp.learning_rate, tp.warmup_steps, tp.min_lr_ratio, tp.schedule,
                   tp.decay_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr

        step_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for micro in range(tp.grad_accum_steps):
            x, y = train_data.batch(sampler.indices(step, micro, tp.batch_size, tp.grad_accum_steps))
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # DDP: only the last micro-batch all-reduces gradients.
            sync = contextlib.nullcontext()
            if dist_info.enabled and micro < tp.grad_accum_steps - 1:
                sync = model.no_sync()
            with sync, autocast(device, dtype):
                _, loss = model(x, y)
                loss = loss / tp.grad_accum_steps
            scaler.scale(loss).backward()
            loss_sum += loss.detach()
        if tp.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), tp.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        train_loss = distributed.all_reduce_mean(loss_sum, dist_info).item()  # .item() syncs the device
        if step > 0:  # step 0 pays for compilation and warm-up: leave it out of the speed figure
            train_time += time.perf_counter() - step_start
        if not math.isfinite(train_loss) or train_loss > 100:
            raise UserError(f"train loss became {train_loss} at step {step}: lower train.learning_rate "
                            f"(now {tp.learning_rate}) or raise train.warmup_steps; the best checkpoint "
                            f"(step {best_step}) is kept at {CHECKPOINT}")
        progress.set_postfix(loss=f"{train_loss:.3f}", lr=f"{lr:.2e}")

        # Validation and checkpoint on the schedule, and always after the last step.
        last = step == tp.max_steps - 1
        if step % tp.eval_interval == 0 or last:
            # The eager model: a compiled one would recompile for eval mode and the summed loss.
            val_loss = estimate_val_loss(raw_model, val_data, val_windows, tp.batch_size, device, dtype)
            if main_rank:
                live.step = step
                live.log_metric("train_loss", train_loss)
                live.log_metric("val_loss", val_loss)
                live.log_metric("val_ppl", math.exp(min(val_loss, 50)))
                live.log_metric("lr", lr)
                if val_loss < best_val:
                    best_val, best_step = val_loss, step
                    save_checkpoint(CHECKPOINT, raw_model, meta["tokenizer_fingerprint"], step, val_loss)

    wall = time.perf_counter() - start
    if main_rank:
        live.end()
        tokens = tp.max_steps * tokens_per_step
        write_json(METRICS, {
            "final_train_loss": round(train_loss, 4),
            "best_val_loss": round(best_val, 4),
            "best_step": best_step,
            "steps": tp.max_steps,
            "tokens": tokens,
            "tokens_per_sec": round((tokens - tokens_per_step) / max(train_time, 1e-9), 1),
            "wall_time_s": round(wall, 1),
            "params_non_embedding": raw_model.num_params(),
        })
        print(f"train: best val loss {best_val:.4f} at step {best_step}, "
              f"{(tokens - tokens_per_step) / max(train_time, 1e-9):,.0f} tokens/s, {wall:.0f}s")
    distributed.shutdown(dist_info)


if __name__ == "__main__":
    run_stage(main)
