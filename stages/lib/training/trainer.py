"""The training loop, shared by pretraining (stages/train.py) and fine-tuning (stages/sft.py).

The story of fit(): pick device and precision, build the model (from given weights when fine-tuning) and
the optimizer (optim.py: AdamW, or Muon and AdamW), pick up the resume state of an interrupted identical run
if there is one, then loop: learning rates from the schedule, grad_accum_steps micro-batches under autocast,
gradient clipping, an optimizer step; every eval_interval steps a validation loss on fixed windows, logged
with dvclive, and the best model so far saved as the run's checkpoint; every checkpoint_interval steps (and
on Ctrl-C / SIGTERM) the resume state.
With train.nproc > 1 the same loop runs under torchrun, with DDP or (train.strategy: fsdp) FSDP sharding the
model; rank 0 alone logs and writes.

A run's data is anything with `n_windows`, `n_tokens` and `batch(indices) -> (inputs, targets)` ([B, T] int64
each; IGNORE targets are not learned): token windows of the shards, or padded conversations.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from stages.lib.errors import UserError
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.gpt import GPT, IGNORE
from stages.lib.params import ModelParams, TrainParams
from stages.lib.runtime import (
    autocast,
    device_rng_state,
    make_deterministic,
    resolve_device,
    resolve_precision,
    reuse_freed_memory,
    seed_everything,
    set_device_rng_state,
)
from stages.lib.training import distributed, memory, resume
from stages.lib.training.batches import EpochSampler, evenly_spaced
from stages.lib.training.optim import build_optimizer
from stages.lib.training.schedule import effective_warmup, lr_at

MAX_LOSS = 100.0  # a loss above this (or NaN) means the run diverged


class Batches(Protocol):
    n_windows: int
    n_tokens: int

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclasses.dataclass
class Run:
    """What differs between pretraining and fine-tuning: data, starting weights, and where results go."""
    name: str  # "train" | "sft": messages, the progress bar, the resume state's folder
    train_data: Batches
    val_data: Batches
    vocab_size: int
    tokenizer_fingerprint: str
    data_fingerprint: dict  # part of the resume key: a state saved on other data is refused
    checkpoint: Path
    live_dir: str
    init_weights: dict | None = None  # fine-tuning starts from these

    @property
    def state_file(self) -> Path:
        return Path(f".cache/{self.name}/resume.pt")


@dataclasses.dataclass
class Progress:
    """What the loop carries from step to step (and across a resume)."""
    step: int = 0  # the next step to run
    best_val: float = math.inf
    best_step: int = -1
    train_loss: float = math.nan
    train_time: float = 0.0  # seconds in training steps, step 0 (compilation) excluded
    timed_steps: int = 0
    history: list = dataclasses.field(default_factory=list)  # rows logged to dvclive


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


@torch.no_grad()
def estimate_val_loss(model: torch.nn.Module, val: Batches, windows: list[int], batch_size: int,
                      device: torch.device, dtype: torch.dtype) -> float:
    """Mean loss over the fixed validation windows."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        x, y = val.batch(windows[i:i + batch_size])
        with autocast(device, dtype):
            _, loss = model(x.to(device), y.to(device), reduction="sum")
        total += loss.item()
        count += int((y != IGNORE).sum())
    model.train()
    return total / count


def open_live(live_dir: str, history: list[dict]):
    """dvclive logger for the run's folder (dvc.yaml declares the plots; dvclive must not edit it).

    A resumed run starts from an empty folder (DVC removed the output), so the history is logged again.
    """
    from dvclive import Live

    live = Live(live_dir, dvcyaml=None, save_dvc_exp=False, report=None)
    for row in history:
        log_row(live, row)
    return live


def log_row(live, row: dict) -> None:
    live.step = row["step"]
    for name, value in row.items():
        if name != "step":
            live.log_metric(name, value)


def set_learning_rates(optimizer, step: int, tp: TrainParams) -> float:
    """Every group's base lr (AdamW's and Muon's) through the same schedule; returns AdamW's, for the log."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, tp.max_steps, group["base_lr"], tp.warmup_steps, tp.min_lr_ratio, tp.schedule,
                            tp.decay_fraction)
    return lr_at(step, tp.max_steps, tp.learning_rate, tp.warmup_steps, tp.min_lr_ratio, tp.schedule,
                 tp.decay_fraction)


def train_step(model, optimizer, scaler, data: Batches, sampler: EpochSampler, step: int, tp: TrainParams,
               device: torch.device, dtype: torch.dtype, dist_info: distributed.DistInfo) -> float:
    """One optimizer step over grad_accum_steps micro-batches; returns the mean loss (all ranks)."""
    loss_sum = torch.zeros((), device=device)
    # Asynchronous copies are safe on CUDA only: on MPS one can read the batch after it is freed (pytorch#139550).
    async_copy = device.type == "cuda"
    for micro in range(tp.grad_accum_steps):
        x, y = data.batch(sampler.indices(step, micro, tp.batch_size, tp.grad_accum_steps))  # [B, T] each
        x, y = x.to(device, non_blocking=async_copy), y.to(device, non_blocking=async_copy)
        # Several processes: only the last micro-batch reduces gradients across ranks.
        with distributed.gradient_sync(model, dist_info, sync=micro == tp.grad_accum_steps - 1):
            with autocast(device, dtype):
                _, loss = model(x, y)
                loss = loss / tp.grad_accum_steps
            scaler.scale(loss).backward()
        loss_sum += loss.detach()
    if tp.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return distributed.all_reduce_mean(loss_sum, dist_info).item()  # .item() waits for the device


def snapshot(raw_model, optimizer, scaler, progress: Progress, best_weights, key: str,
             dist_info: distributed.DistInfo, device: torch.device) -> dict:
    """Everything a resumed run needs; under FSDP every rank calls it (it gathers) and rank 0's is whole."""
    state = {
        "run_key": key,
        "model": distributed.full_model_state(raw_model, dist_info),
        "optimizer": distributed.full_optimizer_state(raw_model, optimizer, dist_info),
        "scaler": scaler.state_dict(),
        "progress": dataclasses.asdict(progress),
        # Each rank's own generator states (they draw their own dropout masks), in rank order.
        "cpu_rng": distributed.gather(torch.get_rng_state(), dist_info),
        "device_rng": distributed.gather(device_rng_state(device), dist_info),
        "best_model": best_weights,
    }
    return state


def restore(state: dict, raw_model, optimizer, scaler, dist_info: distributed.DistInfo,
            device: torch.device) -> Progress:
    distributed.load_full_state(raw_model, optimizer, state["model"], state["optimizer"], dist_info)
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["cpu_rng"][dist_info.rank])
    if state["device_rng"][dist_info.rank] is not None:
        set_device_rng_state(state["device_rng"][dist_info.rank], device)
    return Progress(**state["progress"])


def check_same_state(state: dict | None, dist_info: distributed.DistInfo, state_file: Path) -> None:
    """Every rank must resume from the same step: on several machines only rank 0's writes the file."""
    steps = distributed.gather(state["progress"]["step"] if state is not None else None, dist_info)
    if len(set(steps)) > 1:
        raise UserError(f"the ranks found different resume states (step by rank: {steps}): every machine must "
                        f"see the same {state_file}; put the project on a filesystem they share, or delete "
                        f"that file on every machine to start over")




def setup(tp: TrainParams) -> tuple[torch.device, torch.dtype, distributed.DistInfo]:
    """Device, precision and process group for a run (after relaunching under torchrun if nproc > 1)."""
    device = resolve_device(tp.device)
    dist_info = distributed.init_distributed(device.type, tp.strategy)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    dtype = resolve_precision(tp.precision, device)
    seed_everything(tp.seed)
    if tp.deterministic:
        make_deterministic(device)
    if device.type == "cpu":
        reuse_freed_memory()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device, dtype, dist_info


def fit(cfg: ModelParams, tp: TrainParams, run: Run, params_for_key: dict) -> dict | None:
    """Train per tp on run's data; the best model goes to run.checkpoint. Returns the metrics (rank 0; else None).

    params_for_key: every param that decides the weights, for the resume key.
    """
    device, dtype, dist_info = setup(tp)
    # Refuse a config that cannot fit before it is built, compiled and killed by the kernel.
    memory.check_fits(cfg, tp, run.vocab_size, dtype, device, dist_info.world_size, section=run.name)
    sampler = EpochSampler(run.train_data.n_windows, tp.seed, dist_info.rank, dist_info.world_size)
    val_windows = evenly_spaced(run.val_data.n_windows, tp.eval_batches * tp.batch_size)

    # Model, optimizer, and the state of an interrupted identical run. FSDP shards the parameters in place,
    # so it comes before the optimizer is built and before compilation.
    raw_model = GPT(cfg, run.vocab_size)
    if run.init_weights is not None:
        raw_model.load_state_dict(run.init_weights)
    raw_model.to(device)
    raw_model.grad_checkpointing = tp.grad_checkpointing
    distributed.shard(raw_model, dist_info, dtype)
    distributed.seed_this_rank(tp.seed, dist_info)
    optimizer = build_optimizer(raw_model, tp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    key = resume.run_key(params_for_key, run.data_fingerprint)
    state = resume.load_state(key, run.state_file)
    check_same_state(state, dist_info, run.state_file)
    progress, best_weights = Progress(), None
    if state is not None:
        progress, best_weights = restore(state, raw_model, optimizer, scaler, dist_info, device), state["best_model"]
    # Compiled around DDP, not inside it: dynamo then splits the graph at DDP's gradient buckets, so their
    # all-reduces overlap the rest of the backward instead of all waiting for its end.
    model = maybe_compile(distributed.wrap_ddp(raw_model, dist_info, device), tp.compile, device)

    main_rank = dist_info.is_main
    tokens_per_step = tp.batch_size * tp.grad_accum_steps * cfg.block_size * dist_info.world_size
    live = None
    if main_rank:
        print(f"{run.name}: {raw_model.num_params() / 1e6:.2f}M non-embedding parameters on {device} ({dtype}), "
              f"{tokens_per_step:,} tokens/step, {run.train_data.n_tokens:,} train tokens "
              f"({tp.max_steps * tokens_per_step / max(run.train_data.n_tokens, 1):.2f} epochs)")
        if tp.warmup_steps >= tp.max_steps:
            print(f"{run.name}: {run.name}.warmup_steps={tp.warmup_steps} is not shorter than {run.name}.max_steps="
                  f"{tp.max_steps}: warming up over {effective_warmup(tp.warmup_steps, tp.max_steps)} steps instead")
        if progress.step > 0:  # a saved state always has best weights: step 0 is evaluated before any save
            print(f"{run.name}: resuming from step {progress.step} ({run.state_file})")
            save_checkpoint(run.checkpoint, raw_model, run.tokenizer_fingerprint, progress.best_step,
                            progress.best_val, weights=best_weights)
        live = open_live(run.live_dir, progress.history)

    def save_resume_state() -> bool:
        state = snapshot(raw_model, optimizer, scaler, progress, best_weights, key, dist_info, device)
        return resume.save_state(state, run.state_file) if main_rank else True

    start, first_step = time.perf_counter(), progress.step
    bar = tqdm(range(progress.step, tp.max_steps), desc=run.name, unit="step", disable=not main_rank,
               initial=progress.step, total=tp.max_steps)
    with resume.StopSignal() as stop:
        for step in bar:
            lr = set_learning_rates(optimizer, step, tp)
            step_start = time.perf_counter()
            progress.train_loss = train_step(model, optimizer, scaler, run.train_data, sampler, step, tp, device,
                                             dtype, dist_info)
            if step > first_step:  # the first step of a process pays for compilation: not timed
                progress.train_time += time.perf_counter() - step_start
                progress.timed_steps += 1
            if not math.isfinite(progress.train_loss) or progress.train_loss > MAX_LOSS:
                muon = ""  # sft scales Muon's lr with its own learning_rate (SftParams.training)
                if tp.optimizer == "muon" and run.name == "train":
                    muon = f" or train.muon_lr (now {tp.muon_lr})"
                kept = (f"; the best checkpoint (step {progress.best_step}) is kept at {run.checkpoint}"
                        if progress.best_step >= 0 else "; no checkpoint was written")
                raise UserError(f"{run.name} loss became {progress.train_loss} at step {step}: lower "
                                f"{run.name}.learning_rate (now {tp.learning_rate}){muon} or raise "
                                f"{run.name}.warmup_steps{kept}")
            bar.set_postfix(loss=f"{progress.train_loss:.3f}", lr=f"{lr:.2e}")

            # Validation and checkpoint on the schedule, and always after the last step.
            if step % tp.eval_interval == 0 or step == tp.max_steps - 1:
                # The eager model: a compiled one would recompile for eval mode and the summed loss.
                val_loss = estimate_val_loss(raw_model, run.val_data, val_windows, tp.batch_size, device, dtype)
                val_loss = distributed.from_rank0(val_loss, dist_info, device)  # every rank takes the same branch
                row = {"step": step, "train_loss": progress.train_loss, "val_loss": val_loss,
                       "val_ppl": math.exp(min(val_loss, 50)), "lr": lr}
                progress.history.append(row)
                if main_rank:
                    log_row(live, row)
                if val_loss < progress.best_val:
                    progress.best_val, progress.best_step = val_loss, step
                    best_weights = distributed.full_model_state(raw_model, dist_info)  # FSDP: all ranks gather
                    if main_rank:
                        save_checkpoint(run.checkpoint, raw_model, run.tokenizer_fingerprint, step, val_loss,
                                        weights=best_weights)

            progress.step = step + 1
            if distributed.any_rank(stop.received is not None, dist_info, device):  # all ranks stop together
                if save_resume_state():
                    raise UserError(f"interrupted after step {step}: state saved to {run.state_file}; "
                                    f"rerun `dvc repro` to continue from step {progress.step}")
                raise UserError(f"interrupted after step {step}; the resume state could not be saved")
            if tp.checkpoint_interval and progress.step % tp.checkpoint_interval == 0 \
                    and progress.step < tp.max_steps:
                save_resume_state()

    metrics = None
    if main_rank:
        live.end()
        metrics = run_metrics(progress, tp, tokens_per_step, time.perf_counter() - start, raw_model, run.name)
        resume.clear_state(run.state_file)
    distributed.shutdown(dist_info)
    return metrics


def run_metrics(progress: Progress, tp: TrainParams, tokens_per_step: int, wall: float, raw_model: GPT,
                name: str) -> dict:
    """metrics/train.json. best_val_loss is the lowest estimate_val_loss of the run: train.eval_batches *
    train.batch_size windows spread over the val split, the same at every evaluation, and the minimum over
    all of them. eval's val_loss scores other text (the first eval.max_bytes of the val documents, every
    token), so the two differ and must not be compared; compare val_bpb across runs.
    """
    tokens_per_sec = progress.timed_steps * tokens_per_step / max(progress.train_time, 1e-9)
    print(f"{name}: best val loss {progress.best_val:.4f} at step {progress.best_step}, "
          f"{tokens_per_sec:,.0f} tokens/s, {wall:.0f}s")
    return {
        "final_train_loss": round(progress.train_loss, 4),
        "best_val_loss": round(progress.best_val, 4),
        "best_step": progress.best_step,
        "steps": tp.max_steps,
        "tokens": tp.max_steps * tokens_per_step,
        "tokens_per_sec": round(tokens_per_sec, 1),
        "wall_time_s": round(wall, 1),
        "params_non_embedding": raw_model.num_params(),
    }
