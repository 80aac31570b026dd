"""Multi-process training: relaunch under torchrun, set up the process group, know your rank.

`train.nproc > 1` on a plain `python -m stages.train` relaunches the same
module under `torch.distributed.run` with that many processes on this machine.
For several machines, start torchrun yourself on each (docs/training.md); the code
only reads the RANK / LOCAL_RANK / WORLD_SIZE variables torchrun sets.

Two strategies (`train.strategy`): DDP keeps a whole model and optimizer on
every rank and all-reduces gradients; FSDP (FSDP2, `fully_shard`) keeps a
shard of each on every rank and gathers parameters block by block as the
forward and backward passes need them. Under FSDP the parameters are DTensor
shards, so reading or loading the whole state is a collective every rank
calls (`full_model_state`, `full_optimizer_state`, `load_full_state`); rank 0
gets the gathered tensors and writes the files.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from stages.lib.data.parallel import die_with_parent
from stages.lib.training.optim import Optimizers, parts

LAUNCHER_PID = "STAGES_TORCHRUN_PID"  # set by relaunch_with_torchrun; a torchrun started by hand sets none

# Whole (unsharded) states: gathered onto rank 0's CPU when read; sliced by each rank from the full state
# when loaded (every rank has read the resume file).
GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
SCATTER = StateDictOptions(full_state_dict=True)


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    strategy: str = "ddp"  # train.strategy: "ddp" or "fsdp"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def sharded(self) -> bool:
        """FSDP: parameters, gradients and optimizer state are split across the ranks."""
        return self.enabled and self.strategy == "fsdp"


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch_with_torchrun(nproc: int, module: str) -> None:
    """Run `python -m module` under torchrun with nproc processes and exit with its status.

    A SIGTERM sent to this process goes on to torchrun, which passes it to every rank, so they save their
    resume state; Ctrl-C reaches torchrun from the terminal directly. Should this process be killed
    outright (SIGKILL), torchrun dies with it, and the ranks with torchrun (init_distributed), so no
    orphan goes on writing the outputs while the next run starts.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", module]
    proc = subprocess.Popen(cmd, preexec_fn=partial(become_torchrun, os.getpid()))
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(proc.wait())


def become_torchrun(parent: int) -> None:
    """In the torchrun child before its exec: die with `parent` (the kernel's signal survives the exec, a thread
    would not), and tell the ranks torchrun's process id, so that a rank still starting when torchrun is
    killed finds itself orphaned (its parent id alone would not say: it becomes that of the orphan's adopter)."""
    die_with_parent(parent, watch=False)
    os.environ[LAUNCHER_PID] = str(os.getpid())


def init_distributed(device_type: str, strategy: str) -> DistInfo:
    if not under_torchrun():
        return DistInfo(strategy=strategy)
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]), strategy)
    die_with_parent(int(os.environ.get(LAUNCHER_PID, os.getppid())))  # a rank ends with its torchrun
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return info


def shard(model: torch.nn.Module, info: DistInfo, compute_dtype: torch.dtype) -> None:
    """FSDP: shard each transformer block, then the rest (embeddings, final norm, head), in place.

    The parameters become DTensor shards, so the optimizer must be built after this. Under bf16 or fp16
    the blocks' shards are gathered in that dtype (half the traffic of fp32; autocast would cast each
    weight to it anyway) and their gradients averaged in fp32; shards and optimizer stay fp32. The
    embedding is gathered in fp32 so the residual stream stays fp32, as in a run without FSDP.
    A no-op unless info.sharded.
    """
    if not info.sharded:
        return
    # The logits are a slice of the padded vocabulary (a view); nothing writes to them in place.
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    low_precision = compute_dtype if compute_dtype != torch.float32 else None
    block_policy = MixedPrecisionPolicy(param_dtype=low_precision, reduce_dtype=torch.float32,
                                        cast_forward_inputs=False)  # the residual stream [B, T, C] stays fp32
    for block in model.blocks:
        fully_shard(block, mp_policy=block_policy)
    fully_shard(model)


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """Under DDP the model wrapped for gradient all-reduce (compiled afterwards); otherwise the model itself."""
    if not info.enabled or info.sharded:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[info.local_rank] if device.type == "cuda" else None)


@contextlib.contextmanager
def gradient_sync(model: torch.nn.Module, info: DistInfo, sync: bool) -> Iterator[None]:
    """Forward and backward with (sync) or without cross-rank gradient reduction.

    Gradient accumulation reduces only on the last micro-batch; the others just accumulate locally.
    """
    if sync or not info.enabled:
        yield
    elif info.sharded:  # (a compiled model passes the call on to the FSDP module it wraps)
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        with model.no_sync():
            yield


def full_model_state(model: torch.nn.Module, info: DistInfo) -> dict[str, torch.Tensor]:
    """The whole model's weights as CPU copies, safe to keep while training goes on.

    Under FSDP a collective every rank must call: rank 0 gets the gathered weights, the others {}.
    """
    if info.sharded:
        return get_model_state_dict(model, options=GATHER)
    state = model.state_dict()
    copies: dict[int, torch.Tensor] = {}  # tied weights (embedding and head) stay one tensor, saved once
    for tensor in state.values():
        if tensor.data_ptr() not in copies:
            copies[tensor.data_ptr()] = tensor.detach().to("cpu", copy=True)
    return {name: copies[tensor.data_ptr()] for name, tensor in state.items()}


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | Optimizers,
                         info: DistInfo) -> dict:
    """The optimizer's whole state, to be saved right away (without FSDP it references the live tensors).

    Under FSDP a collective every rank must call: rank 0 gets it (keyed by parameter name, Muon's and AdamW's
    merged), the others {}.
    """
    if info.sharded:
        return get_optimizer_state_dict(model, parts(optimizer), options=GATHER)
    return optimizer.state_dict()


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | Optimizers, model_state: dict,
                    optimizer_state: dict, info: DistInfo) -> None:
    """Load whole states (as full_*_state returned them); under FSDP each rank keeps its own shard."""
    if info.sharded:
        set_model_state_dict(model, model_state, options=SCATTER)
        set_optimizer_state_dict(model, parts(optimizer), optimizer_state, options=SCATTER)
    else:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when it is true on any: ranks that must act together agree first."""
    if not info.enabled:
        return flag
    value = torch.tensor(int(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def seed_this_rank(seed: int, info: DistInfo) -> None:
    """After the model is built (alike on every rank, from `seed`): a generator of each rank's own, so that
    dropout masks differ across the global batch instead of repeating on every rank. A no-op in one process."""
    if info.enabled:
        torch.manual_seed(rank_seed(seed, info.rank))


def rank_seed(seed: int, rank: int) -> int:
    return (seed + 1 + rank) % 2**32  # never the initialisation's seed itself


def gather(value: object, info: DistInfo) -> list:
    """Every rank's value (small, picklable), in rank order, on every rank; [value] in one process."""
    if not info.enabled:
        return [value]
    values = [None] * info.world_size
    dist.all_gather_object(values, value)
    return values


def from_rank0(value: float, info: DistInfo, device: torch.device) -> float:
    """Rank 0's value on every rank, so that decisions taken on it are the same everywhere."""
    if not info.enabled:
        return value
    tensor = torch.tensor(value, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.item()


def shutdown(info: DistInfo) -> None:
    """Leave together: destroying the group while another rank is still busy can hang (pytorch#75097;
    seen once here, rank 0 writing its metrics while rank 1 had already left)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
