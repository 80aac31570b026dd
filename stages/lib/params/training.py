"""The model's and training's sections: model, train, sft, eval, export."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stages.lib.params.fields import check, check_seed, param, positive

# --------------------------------------------------------------------------- model

@dataclass
class ModelParams:
    """The GPT's shape. Small on purpose: on a 2-core CPU this shape learns most in ten minutes; grow it on a GPU."""
    n_layer: int = param(4, "transformer blocks")
    n_head: int = param(3, "attention heads; n_embd must be divisible by it")
    n_embd: int = param(192, "width")
    block_size: int = param(256, "context length in tokens; the shards hold a stream, so changing it never "
                                 "re-tokenizes")
    dropout: float = param(0.0, "dropout probability")
    position: Literal["rope", "learned"] = param("rope", "rotary or learned position embeddings")
    rope_base: float = param(10000.0, "rotary base frequency")
    norm: Literal["rmsnorm", "layernorm"] = param("rmsnorm", "normalization layer")
    mlp: Literal["relu2", "swiglu", "gelu"] = param("relu2", "MLP activation: squared ReLU, SwiGLU or GELU")
    mlp_ratio: float = param(4.0, "MLP width / n_embd (SwiGLU takes 2/3 of it, rounded up to a multiple of 64: "
                                  "about the same parameter count)")
    qk_norm: bool = param(True, "RMS-normalize queries and keys")
    tie_embeddings: bool = param(True, "share the input embedding with the output head")
    logit_softcap: float = param(0.0, "logits = c * tanh(logits / c) when c > 0 (0: off)")
    bias: bool = param(False, "biases in linear layers and LayerNorm")

    def validate(self, s: str) -> None:
        positive(s, self, "n_layer", "n_head", "n_embd", "block_size", "mlp_ratio", "rope_base")
        check(self.n_embd % self.n_head == 0,
               f"{s}.n_embd={self.n_embd} is not divisible by {s}.n_head={self.n_head}")
        check(self.position != "rope" or (self.n_embd // self.n_head) % 2 == 0,
               f"rope needs an even head size, but {s}.n_embd/{s}.n_head={self.n_embd // self.n_head}")
        check(0.0 <= self.dropout < 1.0, f"{s}.dropout={self.dropout} must be in [0, 1)")
        check(self.logit_softcap >= 0.0, f"{s}.logit_softcap={self.logit_softcap} must be >= 0 (0: off)")


# --------------------------------------------------------------------------- train

Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class TrainParams:
    """Pretraining on the train shards (artifacts/checkpoints/model.pt); sft takes its device, precision,
    optimizer and parallelism from here too."""
    max_steps: int = param(2000, "optimizer steps")
    batch_size: int = param(16, "windows per micro-batch, per process")
    grad_accum_steps: int = param(1, "micro-batches per step")
    learning_rate: float = param(4.0e-3, "AdamW's peak learning rate (with muon: for the parameters Muon does not "
                                         "take)")
    min_lr_ratio: float = param(0.0, "the schedule ends at learning_rate * min_lr_ratio")
    warmup_steps: int = param(50, "linear warmup (one as long as the run is cut to a tenth of it, with a note)")
    schedule: Literal["cosine", "wsd"] = param(
        "wsd", "wsd: warmup, the peak until the last decay_fraction of the steps, then linear down; or cosine")
    decay_fraction: float = param(0.3, "wsd: share of steps spent decaying at the end")
    weight_decay: float = param(0.1, "AdamW's, on weight matrices only")
    beta1: float = param(0.9, "AdamW's beta1")
    beta2: float = param(0.95, "AdamW's beta2")
    optimizer: Literal["adamw", "muon"] = param(
        "muon", "adamw on every parameter, or muon: Muon on the blocks' 2-D weight matrices, AdamW on the "
                "embedding (and tied head), norm gains and biases")
    muon_lr: float = param(0.04, "muon: Muon's peak learning rate (Keller Jordan's convention), on the same "
                                 "schedule as learning_rate")
    muon_momentum: float = param(0.95, "muon: Muon's Nesterov momentum")
    muon_weight_decay: float = param(0.0, "muon: each step Muon's matrices shrink by the scheduled muon_lr * this")
    grad_clip: float = param(1.0, "global gradient norm clip (0: off)")
    eval_interval: int = param(100, "steps between validation losses (and best-checkpoint saves)")
    eval_batches: int = param(10, "validation batches per evaluation (fixed windows)")
    checkpoint_interval: int = param(100, "steps between resume-state saves (0: only on Ctrl-C / SIGTERM)")
    device: Device = param("auto", "auto: CUDA, then MPS, then CPU")
    precision: Precision = param(
        "auto", "auto: bf16 where the hardware runs it fast (CUDA with bf16, CPUs with AVX512-BF16 or AMX), fp16 "
                "with a grad scaler on older GPUs, fp32 otherwise")
    compile: bool = param(True, "torch.compile (eager, with a warning, on MPS or without a C++ compiler)")
    deterministic: bool = param(
        True, "deterministic kernels: the same params and data give the same weights, so DVC's cache means "
              "something (on CUDA an op without one stops the run: set false to go on)")
    grad_checkpointing: bool = param(False, "recompute activations in backward: less memory, more time")
    nproc: int = param(1, "> 1: torchrun with this many processes (docs/training.md)")
    strategy: Literal["ddp", "fsdp"] = param(
        "ddp", "with nproc > 1: ddp keeps a whole model per process; fsdp shards parameters, gradients and "
               "optimizer state across them")
    seed: int = param(1337, "initialization, data order, dropout")

    def validate(self, s: str) -> None:
        positive(s, self, "max_steps", "batch_size", "grad_accum_steps", "learning_rate",
                  "eval_interval", "eval_batches", "nproc")
        check(0.0 <= self.min_lr_ratio <= 1.0, f"{s}.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        # A warmup as long as the run is cut to a tenth of it (schedule.effective_warmup), with a note.
        check(self.warmup_steps >= 0, f"{s}.warmup_steps={self.warmup_steps} must be >= 0")
        check(0.0 < self.decay_fraction <= 1.0, f"{s}.decay_fraction={self.decay_fraction} must be in (0, 1]")
        check(self.weight_decay >= 0.0, f"{s}.weight_decay={self.weight_decay} must be >= 0")
        check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0, f"{s}.beta1 and {s}.beta2 must be in [0, 1)")
        check(self.muon_lr > 0.0, f"{s}.muon_lr={self.muon_lr} must be > 0")
        check(0.0 <= self.muon_momentum < 1.0, f"{s}.muon_momentum={self.muon_momentum} must be in [0, 1)")
        check(self.muon_weight_decay >= 0.0, f"{s}.muon_weight_decay={self.muon_weight_decay} must be >= 0")
        check(self.grad_clip >= 0.0, f"{s}.grad_clip={self.grad_clip} must be >= 0 (0: off)")
        check(self.checkpoint_interval >= 0, f"{s}.checkpoint_interval={self.checkpoint_interval} must be >= 0")
        check_seed(s, self)


# --------------------------------------------------------------------------- sft

@dataclass
class SftParams:
    """Instruction fine-tuning of the pretrained model (artifacts/checkpoints/sft.pt). The schedule and batch
    are its own; device, precision, compile, determinism, the optimizer (Muon's lr scaled as learning_rate
    is), betas, weight decay, clipping and nproc/strategy come from train."""
    train_files: list[str] = param(["data/instructions/train.jsonl"],
                                   "instruction files, chat JSONL or Alpaca JSON/JSONL (docs/sft.md); add your "
                                   "own to sft's deps in dvc.yaml too")
    val_files: list[str] = param(["data/instructions/val.jsonl"], "held-out instruction files")
    bad_records: Literal["error", "skip"] = param(
        "error", "a malformed record or a conversation longer than model.block_size: stop naming it, or skip it "
                 "(counted)")
    max_steps: int = param(300, "optimizer steps")
    batch_size: int = param(16, "conversations per micro-batch (per process), each padded to the longest")
    grad_accum_steps: int = param(1, "micro-batches per step")
    learning_rate: float = param(1.0e-3, "peak learning rate (a quarter of train.learning_rate; Muon's is scaled "
                                         "alike)")
    min_lr_ratio: float = param(0.1, "the schedule ends at learning_rate * min_lr_ratio")
    warmup_steps: int = param(20, "linear warmup")
    schedule: Literal["cosine", "wsd"] = param("cosine", "as train.schedule")
    decay_fraction: float = param(0.2, "wsd: share of steps spent decaying")
    eval_interval: int = param(50, "steps between validation losses; the best checkpoint is kept")
    eval_batches: int = param(10, "validation batches per evaluation")
    eval_items: int = param(300, "held-out conversations answered greedily for exact match, before and after "
                                 "(0: all)")
    max_new_tokens: int = param(32, "the longest answer generated for exact match")
    seed: int = param(1337, "data order, dropout")

    def validate(self, s: str) -> None:
        check(bool(self.train_files) and bool(self.val_files), f"{s}.train_files and {s}.val_files must not be empty")
        positive(s, self, "max_new_tokens")
        check(self.eval_items >= 0, f"{s}.eval_items={self.eval_items} must be >= 0 (0: all)")
        # The schedule, batch and seed: train's own checks, naming this section's keys.
        self.training(TrainParams()).validate(s)

    def training(self, tp: TrainParams) -> TrainParams:
        """train.* with this section's schedule, batch and steps: what the shared training loop runs.

        Muon's lr (train.optimizer: muon) is scaled as AdamW's is, by sft.learning_rate / train.learning_rate,
        as nanochat scales every group's lr for fine-tuning: pretraining's would undo what was learned.
        """
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainParams) if hasattr(self, f.name)}
        own["muon_lr"] = tp.muon_lr * self.learning_rate / tp.learning_rate
        return dataclasses.replace(tp, **own)


# --------------------------------------------------------------------------- eval

@dataclass
class EvalParams:
    """Scores the pretrained model (metrics/eval.json) and writes sample generations (metrics/samples.md)."""
    max_bytes: int = param(
        700_000, "validation text scored: whole documents, in the split's order, while their UTF-8 bytes stay "
                 "within this (at least one; 0: all); by bytes, so runs with different tokenizers score the "
                 "same text")
    batch_size: int = param(8, "windows per forward pass")
    heldout: list[str] = param([], "extra text files, each scored as its own split (heldout_<name>_bpb); add "
                                   "them to eval's deps in dvc.yaml too")
    device: Device = param("auto", "as train.device")
    precision: Precision = param("auto", "as train.precision")
    prompts: list[str] = param([], "prompts for metrics/samples.md; empty: n_prompts drawn from the validation "
                                   "documents")
    n_prompts: int = param(3, "with prompts empty: how many to draw, each the first words of a seeded "
                              "validation line")
    max_new_tokens: int = param(120, "tokens generated per prompt")
    temperature: float = param(0.8, "sampling temperature (0: greedy)")
    top_k: int = param(40, "sample from the k likeliest tokens (0: no limit)")
    seed: int = param(1337, "sampling and the prompt draw")
    tasks: list[str] = param(["data/tasks/next_passage.jsonl", "data/tasks/last_word.jsonl"],
                             "benchmark task files (JSONL, docs/evaluation.md), each reported as "
                             "task_<file stem>_<metric>; add your own to eval's deps in dvc.yaml too")

    def validate(self, s: str) -> None:
        check(self.max_bytes >= 0, f"{s}.max_bytes={self.max_bytes} must be >= 0 (0: all)")
        check(self.n_prompts >= 0, f"{s}.n_prompts={self.n_prompts} must be >= 0")
        positive(s, self, "batch_size")
        check(self.max_new_tokens >= 0, f"{s}.max_new_tokens={self.max_new_tokens} must be >= 0")
        check(self.temperature >= 0.0, f"{s}.temperature={self.temperature} must be >= 0 (0: greedy)")
        check(self.top_k >= 0, f"{s}.top_k={self.top_k} must be >= 0 (0: no limit)")
        check(all(name.endswith(".jsonl") for name in self.tasks),
               f"{s}.tasks={self.tasks}: each task file must be a .jsonl file (its stem names the metrics)")
        stems = [Path(name).stem for name in self.tasks]
        check(len(set(stems)) == len(stems),
               f"{s}.tasks={self.tasks}: two files share a name, so their task_<name>_* metrics would collide")
        check_seed(s, self)


# --------------------------------------------------------------------------- export

@dataclass
class ExportParams:
    """The Hugging Face model folders (artifacts/hf, artifacts/hf-sft; docs/generate.md)."""
    dtype: Literal["float32", "bfloat16", "float16"] = param("float32", "the weights' type in model.safetensors")

    def validate(self, s: str) -> None:
        pass  # the Literal type is the whole check
