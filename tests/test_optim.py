"""The optimizer (train.optimizer): which parameters Muon takes, both learning rates on one schedule, state that
round-trips, the fp16 grad scaler, params checks, and Muon on FSDP's sharded matrices.

The train stage itself with Muon (resume, DDP, FSDP) is tested in tests/test_train.py.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from stages.lib.errors import UserError
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams, SftParams, TrainParams, parse_section
from stages.lib.training.optim import Optimizers, build_optimizer, split_parameters
from stages.lib.training.schedule import lr_at
from stages.lib.training.trainer import set_learning_rates

VOCAB = 100
CPU = torch.device("cpu")


def tiny(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(dataclasses.replace(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=16), **overrides), VOCAB)


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (4, 17), generator=torch.Generator().manual_seed(seed))


def train(model: GPT, optimizer, steps: int, first_seed: int = 0, same_batch: bool = False) -> float:
    for i in range(steps):
        x = batch(first_seed if same_batch else first_seed + i)
        _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def names(model: GPT, params: list) -> set[str]:
    by_id = {id(p): name for name, p in model.named_parameters()}
    return {by_id[id(p)] for p in params}


# --------------------------------------------------------------------------- grouping

def test_muon_takes_the_blocks_matrices_and_adamw_the_rest_each_parameter_once():
    model = tiny()  # tied embeddings: the head is the embedding, one parameter
    groups = split_parameters(model, "muon")
    matrices = {f"blocks.{i}.{m}.weight" for i in range(2) for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")}
    assert names(model, groups["muon"]) == matrices
    assert names(model, groups["decay"]) == {"wte.weight"}
    assert names(model, groups["no_decay"]) == {"norm_f.weight"} | {f"blocks.{i}.norm{j}.weight"
                                                                     for i in range(2) for j in (1, 2)}
    everything = [p for group in groups.values() for p in group]
    assert len(everything) == len({id(p) for p in everything}) == len(list(model.parameters()))


def test_an_untied_head_learned_positions_and_biases_go_to_adamw():
    model = tiny(tie_embeddings=False, position="learned", bias=True, norm="layernorm")
    groups = split_parameters(model, "muon")
    assert names(model, groups["decay"]) == {"wte.weight", "wpe.weight", "lm_head.weight"}
    assert all(name.startswith("blocks.") and name.endswith(".weight") for name in names(model, groups["muon"]))
    assert "blocks.0.attn.qkv.bias" in names(model, groups["no_decay"])
    assert sum(len(g) for g in groups.values()) == len(list(model.parameters()))


def test_adamw_decays_matrices_only():
    model = tiny(norm="layernorm", bias=True)
    optimizer = build_optimizer(model, TrainParams(optimizer="adamw", weight_decay=0.1), CPU)
    assert isinstance(optimizer, torch.optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


# --------------------------------------------------------------------------- learning

def test_muon_trains_a_tiny_model_and_each_step_is_orthogonal():
    """Muon's step on a matrix is its momentum orthogonalized: singular values near lr * sqrt(max(1, rows/cols))
    (Newton-Schulz lands them in about [0.7, 1.2] of that, not exactly 1)."""
    model = tiny()
    tp = TrainParams(optimizer="muon", muon_lr=0.02, learning_rate=3e-3)
    optimizer = build_optimizer(model, tp, CPU)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"]
    x = batch()
    with torch.no_grad():
        first = model(x[:, :-1], x[:, 1:])[1].item()
    # The blocks start as the identity (zero output projections), so on the first step only those learn;
    # q/k/v ([96, 32]: Keller's scale sqrt(96 / 32)) from the second on.
    for matrix, scale in ((model.blocks[0].mlp.proj.weight, 1.0), (model.blocks[0].attn.qkv.weight, math.sqrt(3))):
        before = matrix.detach().clone()
        train(model, optimizer, 1)
        singular = torch.linalg.svdvals(matrix.detach() - before) / (0.02 * scale)
        assert 0.6 < singular.min() and singular.max() < 1.3, singular
    last = train(model, optimizer, 30, same_batch=True)  # random tokens: learnable by heart only
    assert last < first - 1.0, f"loss {first:.3f} -> {last:.3f}"


def test_both_learning_rates_follow_the_schedule():
    model = tiny()
    tp = TrainParams(optimizer="muon", learning_rate=2e-3, muon_lr=0.02, max_steps=100, warmup_steps=10)
    optimizer = build_optimizer(model, tp, CPU)
    for step in (0, 5, 50, 99):
        logged = set_learning_rates(optimizer, step, tp)
        factor = lr_at(step, 100, 1.0, 10, tp.min_lr_ratio, tp.schedule, tp.decay_fraction)
        muon, *adamw = optimizer.param_groups
        assert muon["lr"] == pytest.approx(0.02 * factor) and logged == pytest.approx(2e-3 * factor)
        assert all(group["lr"] == pytest.approx(2e-3 * factor) for group in adamw)


def test_optimizer_state_round_trips_exactly():
    """What resume relies on: a fresh model and optimizer given the saved states continue bit for bit."""
    tp = TrainParams(optimizer="muon", learning_rate=3e-3)
    model = tiny()
    optimizer = build_optimizer(model, tp, CPU)
    train(model, optimizer, 3)
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    train(model, optimizer, 3, first_seed=3)

    other = tiny()
    other.load_state_dict(saved_model)
    other_optimizer = build_optimizer(other, tp, CPU)
    other_optimizer.load_state_dict(saved_optimizer)
    assert "momentum_buffer" in other_optimizer.optimizers[0].state[other.blocks[0].mlp.fc.weight]
    train(other, other_optimizer, 3, first_seed=3)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name


def test_fp16_grad_scaler_steps_both_optimizers_or_neither():
    model = tiny()
    optimizer = build_optimizer(model, TrainParams(optimizer="muon"), CPU)
    assert isinstance(optimizer, Optimizers)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    x = batch()
    _, loss = model(x[:, :-1], x[:, 1:])
    scaler.scale(loss).backward()
    model.blocks[0].mlp.proj.weight.grad[0, 0] = math.inf  # an overflow in a Muon matrix skips the AdamW step too
    scaler.step(optimizer)
    scaler.update()
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    assert scaler.get_scale() == 512.0
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x[:, :-1], x[:, 1:])
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    assert not torch.equal(before["wte.weight"], model.wte.weight)  # AdamW
    assert not torch.equal(before["blocks.0.mlp.proj.weight"], model.blocks[0].mlp.proj.weight)  # Muon


# --------------------------------------------------------------------------- params

@pytest.mark.parametrize("raw, message", [
    ({"optimizer": "sgd"}, "train.optimizer='sgd' is not one of: adamw, muon"),
    ({"muon_lr": 0.0}, "train.muon_lr=0.0 must be > 0"),
    ({"muon_momentum": 1.0}, "train.muon_momentum=1.0 must be in [0, 1)"),
    ({"muon_weight_decay": -0.1}, "train.muon_weight_decay=-0.1 must be >= 0"),
])
def test_bad_optimizer_params_are_named(raw, message):
    with pytest.raises(UserError) as err:
        parse_section("train", raw)
    assert message in str(err.value)


def test_sft_scales_muons_lr_as_it_scales_adamws():
    tp = TrainParams(optimizer="muon", learning_rate=2e-3, muon_lr=0.02, muon_momentum=0.9)
    merged = SftParams(learning_rate=5e-4).training(tp)
    assert merged.learning_rate == 5e-4 and merged.muon_lr == pytest.approx(0.005)
    assert (merged.optimizer, merged.muon_momentum) == ("muon", 0.9)


# --------------------------------------------------------------------------- FSDP

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _muon_step_on_shards(rank: int, port: int, grads: list[torch.Tensor], out: dict) -> None:
    """One Muon step on fully_shard'ed matrices, each rank holding half of every one (rows)."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    layers = [torch.nn.Linear(g.size(1), g.size(0), bias=False) for g in grads]
    for layer, grad in zip(layers, grads):
        fully_shard(layer)
        layer.weight.grad = distribute_tensor(grad, layer.weight.device_mesh, layer.weight.placements)
    torch.optim.Muon([layer.weight for layer in layers], lr=0.02, adjust_lr_fn="original").step()
    full = [layer.weight.detach().full_tensor() for layer in layers]
    if rank == 0:
        out["weights"] = full
    dist.destroy_process_group()


def test_muon_on_fsdp_shards_orthogonalizes_each_whole_matrix():
    """torch.optim.Muon on FSDP2's DTensor shards: Newton-Schulz runs as DTensor ops on the whole matrix (with
    collectives), not on each rank's rows. Same step as one process, up to bf16 rounding of partial sums (~3%);
    orthogonalizing each shard alone would be off by about 70% here."""
    torch.manual_seed(0)
    shapes = [(96, 32), (32, 96), (33, 7)]  # tall, wide, and rows that do not split evenly
    grads = [torch.randn(shape) for shape in shapes]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_muon_step_on_shards, args=(free_port(), grads, out), nprocs=2)
        sharded = out["weights"]
    torch.manual_seed(0)
    layers = [torch.nn.Linear(g.size(1), g.size(0), bias=False) for g in grads]
    initial = [layer.weight.detach().clone() for layer in layers]
    for layer, grad in zip(layers, grads):
        layer.weight.grad = grad.clone()
    torch.optim.Muon([layer.weight for layer in layers], lr=0.02, adjust_lr_fn="original").step()
    for layer, start, got in zip(layers, initial, sharded):
        whole, step = layer.weight.detach() - start, got - start
        assert (step - whole).norm() < 0.1 * whole.norm(), tuple(start.shape)
