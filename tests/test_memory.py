"""The memory estimate refuses configs that cannot fit, names the keys, and never refuses the defaults."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from stages.lib.errors import UserError
from stages.lib.params import ModelParams, TrainParams
from stages.lib.training import memory

CPU = torch.device("cpu")
GiB = memory.GiB


def test_the_block_size_of_the_issue_is_refused_with_the_keys_and_the_estimate(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 24 * GiB)
    cfg = dataclasses.replace(ModelParams(), block_size=100000)
    with pytest.raises(UserError) as err:
        memory.check_fits(cfg, TrainParams(), 8192, torch.bfloat16, CPU)
    message = str(err.value)
    assert "model.block_size=100000" in message and "train.batch_size=16" in message
    assert "24.0 GiB free" in message and "logits" in message and "\\n" not in message


def test_the_defaults_fit_a_small_laptop(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 4 * GiB)
    assert memory.check_fits(ModelParams(), TrainParams(), 8192, torch.bfloat16, CPU).total < 2 * GiB


def test_the_estimate_grows_with_what_costs_memory():
    base = memory.estimate(ModelParams(), TrainParams(), 8192, torch.float32, CPU)
    double_batch = memory.estimate(ModelParams(), dataclasses.replace(TrainParams(), batch_size=32), 8192,
                                   torch.float32, CPU)
    assert double_batch.activations == 2 * base.activations and double_batch.logits == 2 * base.logits
    assert double_batch.state == base.state
    checkpointed = memory.estimate(ModelParams(), dataclasses.replace(TrainParams(), grad_checkpointing=True),
                                   8192, torch.float32, CPU)
    assert checkpointed.activations < base.activations / 2
    bf16 = memory.estimate(ModelParams(), TrainParams(), 8192, torch.bfloat16, CPU)
    assert bf16.activations < base.activations


def test_fsdp_shards_the_model_state():
    tp = dataclasses.replace(TrainParams(), strategy="fsdp", nproc=4)
    one = memory.estimate(ModelParams(), TrainParams(), 8192, torch.float32, CPU)
    four = memory.estimate(ModelParams(), tp, 8192, torch.float32, CPU, world_size=4)
    assert four.state == one.state // 4


def test_parameters_are_counted_without_allocating():
    # 48 layers of width 16384: 155 B parameters, counted on the meta device in well under a second.
    cfg = dataclasses.replace(ModelParams(), n_layer=48, n_head=128, n_embd=16384)
    assert memory.count_params(cfg, 8192) > 150e9


def test_long_contexts_leave_the_materialized_cpu_attention():
    # The CPU path builds [B, H, T, T] scores: at T=4096 that would be GiBs per layer, so the flash kernel runs.
    from stages.lib.model.gpt import attention_is_materialized
    assert attention_is_materialized(CPU, 16, 6, 256, training=True)
    assert not attention_is_materialized(CPU, 16, 6, 4096, training=True)
    assert not attention_is_materialized(torch.device("cuda"), 16, 6, 256, training=True)
    long = memory.estimate(dataclasses.replace(ModelParams(), block_size=4096), TrainParams(), 8192,
                           torch.float32, CPU)
    assert long.attention == 0
