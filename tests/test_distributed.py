"""Sharding choices that a two-process run cannot see from outside: which dtype FSDP gathers in."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from stages.lib.errors import UserError
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams
from stages.lib.training import distributed


@pytest.fixture
def one_rank_group(tmp_path):
    """A gloo process group of one rank: enough for fully_shard to build its (trivial) shards."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def weight_dtypes_in_forward(model: GPT, dtype: torch.dtype) -> dict[str, torch.dtype]:
    """The dtype of each Linear's weight as its forward sees it (after FSDP's all-gather)."""
    seen: dict[str, torch.dtype] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, m.weight.dtype))
    idx = torch.randint(0, 100, (2, 16))
    with torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
        _, loss = model(idx, idx)
    loss.backward()
    return seen


@pytest.mark.parametrize("norm", ["rmsnorm", "layernorm"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_fsdp_gathers_block_weights_in_the_compute_dtype_and_keeps_fp32_shards(one_rank_group, dtype, norm):
    """(The norms see bf16 gains and an fp32 residual stream: they must cast the gains, or CPU ops refuse.)"""
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=16, norm=norm, bias=True), 100)
    distributed.shard(model, distributed.DistInfo(world_size=2, strategy="fsdp"), dtype)
    seen = weight_dtypes_in_forward(model, dtype)
    assert {seen[f"blocks.{i}.{name}"] for i in range(2) for name in ("attn.qkv", "mlp.proj")} == {dtype}
    assert seen["lm_head"] == torch.float32  # tied to the embedding: the residual stream starts in fp32
    for name, param in model.named_parameters():  # what the optimizer updates and checkpoints save
        assert param.dtype == torch.float32 and param.grad.dtype == torch.float32, name


def test_each_rank_draws_its_own_dropout_masks_after_a_shared_initialisation():
    seeds = [distributed.rank_seed(1337, rank) for rank in range(8)]
    assert len(set(seeds)) == 8 and 1337 not in seeds
    assert distributed.rank_seed(2**32 - 1, 0) < 2**32  # still a valid seed


def test_ranks_that_found_different_resume_states_stop(monkeypatch):
    """On several machines without a shared filesystem only rank 0's machine has the file: the ranks would
    run different steps and hang at their first collective, so they stop with a message instead."""
    from stages.lib.training import trainer

    info = distributed.DistInfo(rank=0, world_size=2)
    monkeypatch.setattr(distributed, "gather", lambda value, info: [value, None])
    with pytest.raises(UserError, match=r"step by rank: \[40, None\]"):
        trainer.check_same_state({"progress": {"step": 40}}, info, Path(".cache/train/resume.pt"))
    trainer.check_same_state(None, info, Path(".cache/train/resume.pt"))  # all agree: nothing saved
