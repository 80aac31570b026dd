"""The optimizer (train.optimizer): AdamW for everything, or Muon for the hidden matrices and AdamW for the rest.

adamw: AdamW on every parameter, weight decay on matrices only (not on norm gains or biases).

muon: the split the speedrun recipes use (modded-nanogpt, nanochat). Muon
(torch.optim.Muon: momentum, then the update orthogonalized by a few
Newton-Schulz iterations) on the 2-D weight matrices inside the transformer
blocks: attention q/k/v and output projections, MLP in and out. AdamW on the
rest: the token embedding (also the output head when tied, counted once),
learned positions, an untied head, norm gains and biases. Muon treats a matrix
as a linear map between hidden spaces, which embeddings (a lookup) and the
head (scored one row per token) are not.

Each group keeps its base learning rate in group["base_lr"] (train.muon_lr for
Muon, train.learning_rate for AdamW); the trainer multiplies it by the schedule,
so both follow the same warmup and decay. Muon's lr is Keller Jordan's
convention (adjust_lr_fn="original": a step of about lr * sqrt(max(1, rows/cols))
in spectral norm; 0.02 in modded-nanogpt and nanochat), not Moonshot's
AdamW-matched one: it is tuned apart from AdamW's lr anyway.

The two optimizers are stepped as one `Optimizers` object with the interface
the trainer, GradScaler and resume use: param_groups, step, zero_grad,
state_dict, load_state_dict.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from stages.lib.params import TrainParams


def split_parameters(model: nn.Module, optimizer: str) -> dict[str, list[nn.Parameter]]:
    """The trainable parameters by group: "muon" (blocks' matrices; muon only), "decay" (other matrices)
    and "no_decay" (vectors). Each parameter once: named_parameters lists a tied head under the embedding."""
    groups: dict[str, list[nn.Parameter]] = {"muon": [], "decay": [], "no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if optimizer == "muon" and p.dim() == 2 and name.startswith("blocks."):
            groups["muon"].append(p)
        else:
            groups["decay" if p.dim() >= 2 else "no_decay"].append(p)
    return groups


def adamw(decay: list[nn.Parameter], no_decay: list[nn.Parameter], lr: float, weight_decay: float,
          betas: tuple[float, float], device: torch.device) -> torch.optim.AdamW:
    groups = [{"params": decay, "weight_decay": weight_decay, "base_lr": lr},
              {"params": no_decay, "weight_decay": 0.0, "base_lr": lr}]
    # fused runs one kernel for all parameters (CUDA and CPU; 3% faster here); foreach batches them elsewhere.
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused, foreach=None if fused else True)


def build_optimizer(model: nn.Module, tp: TrainParams, device: torch.device) -> torch.optim.Optimizer | Optimizers:
    """train.optimizer over the model's parameters (under FSDP, after sharding: its DTensor shards)."""
    groups = split_parameters(model, tp.optimizer)
    rest = adamw(groups["decay"], groups["no_decay"], tp.learning_rate, tp.weight_decay, (tp.beta1, tp.beta2),
                 device)
    if tp.optimizer == "adamw":
        return rest
    muon = torch.optim.Muon([{"params": groups["muon"], "base_lr": tp.muon_lr}], lr=tp.muon_lr,
                            momentum=tp.muon_momentum, weight_decay=tp.muon_weight_decay,
                            adjust_lr_fn="original")
    return Optimizers([muon, rest])


class Optimizers:
    """Several optimizers over disjoint parameters, stepped as one.

    param_groups lists every optimizer's groups (the live dicts: setting group["lr"] reaches the optimizer
    that owns it), so the schedule, GradScaler.unscale_ and gradient clipping need not know there are two.
    """

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, own in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(own)


def parts(optimizer: torch.optim.Optimizer | Optimizers) -> list[torch.optim.Optimizer]:
    """The torch optimizers inside: what torch.distributed.checkpoint's state_dict functions take."""
    return optimizer.optimizers if isinstance(optimizer, Optimizers) else [optimizer]
