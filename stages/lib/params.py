"""Typed params: one dataclass per params.yaml section, the one home of each key's default and description.

`load_params(["model", "train"])` reads params.yaml, checks every key's type,
rejects unknown keys, runs each section's `validate()` and returns the typed
sections. Error messages name the dotted key, e.g.
`model.n_embd=100 is not divisible by model.n_head=6`.

Each field is declared with `param(default, "what it does")`; params.yaml and
docs/parameters.md are rendered from these declarations (`python -m stages.docs`),
and a test fails when either is stale.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from stages.lib.data.pii.kinds import PII_KINDS
from stages.lib.errors import UserError

PARAMS_FILE = "params.yaml"


def param(default: Any, doc: str) -> Any:
    """A params field: its default and its one description (params.yaml and docs/parameters.md show it)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def section(cls: type) -> Any:
    """A nested section (clean.quality, ...): its keys are described in its own dataclass."""
    return field(default_factory=cls)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(f"params.yaml: {message}")


def _positive(section: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value > 0, f"{section}.{name}={value} must be > 0")


def _seed(section: str, obj: Any) -> None:
    # numpy's legacy seeding and SentencePiece take 32-bit seeds; xxhash would silently wrap larger ones.
    _check(0 <= obj.seed < 2**32, f"{section}.seed={obj.seed} must be between 0 and 2**32 - 1 = {2**32 - 1}")


# --------------------------------------------------------------------------- merge

# Where a data stage's per-document work runs: `local` (this machine's process pool) or `ray` (Ray Data, on
# the cluster RAY_ADDRESS names or a Ray instance started on this machine). Both write the same bytes.
Engine = Literal["local", "ray"]


@dataclass
class MergeParams:
    """Every accepted file under `input_dir` becomes documents (data/interim/merged)."""
    input_dir: str = param("data/raw", "folder scanned recursively, in sorted path order")
    extensions: list[str] = param(
        [".txt", ".md", ".jsonl", ".parquet"],
        "accepted file types, each also gzipped (`.txt.gz`); other files are counted and skipped")
    doc_mode: Literal["file", "line", "paragraph"] = param(
        "file", "how a text file becomes documents: the whole file, one per line, or blank-line-separated blocks")
    text_field: str = param("text", "the text field of `.jsonl` records and `.parquet` columns")
    encoding_errors: Literal["replace", "skip", "error"] = param(
        "replace", "invalid UTF-8 in a file: replace it (counted), skip the file, or stop")
    bad_files: Literal["error", "skip"] = param(
        "error", "binary, unreadable or malformed files, records without text, broken symlinks: stop, or skip "
                 "them (counted)")
    max_doc_chars: int = param(
        10_000_000, "longer documents are skipped as they are read, never held whole, which bounds memory "
                    "(counted, warned per file; 0: no limit)")
    engine: Engine = param("local", "where files are read: this machine, or Ray Data tasks (RAY_ADDRESS: a "
                                    "cluster; docs/ray.md); the same output")

    def validate(self, s: str) -> None:
        _check(self.max_doc_chars >= 0, f"{s}.max_doc_chars={self.max_doc_chars} must be >= 0 (0: no limit)")
        _check(all(e.startswith(".") for e in self.extensions),
               f"{s}.extensions={self.extensions}: each extension must start with '.', e.g. '.txt'")
        _check(bool(self.text_field), f"{s}.text_field must not be empty")


# --------------------------------------------------------------------------- clean

QUALITY_FILTERS = ("word_count", "mean_word_length", "symbol_ratio", "alpha_words",
                   "duplicate_lines", "top_ngrams", "duplicate_ngrams")


@dataclass
class QualityParams:
    """Gopher/C4-style document filters: `filters` lists the ones to run, the other keys are their thresholds."""
    filters: list[str] = param(list(QUALITY_FILTERS), "the filters to run, any of: " + ", ".join(QUALITY_FILTERS))
    min_words: int = param(50, "word_count: the fewest words a document may have")
    max_words: int = param(2_000_000, "word_count: the most words a document may have")
    min_mean_word_length: float = param(3.0, "mean_word_length: the shortest mean word length, in characters")
    max_mean_word_length: float = param(10.0, "mean_word_length: the longest mean word length, in characters")
    max_symbol_word_ratio: float = param(0.1, "symbol_ratio: `#` and ellipses per word")
    min_alpha_word_fraction: float = param(0.8, "alpha_words: the least share of words with at least one letter")
    max_duplicate_line_fraction: float = param(
        0.4, "duplicate_lines: the most share of non-empty lines that repeat an earlier line")
    max_top_ngram_fraction: float = param(
        0.2, "top_ngrams: the most share of characters covered by the most frequent word 2-gram")
    max_duplicate_ngram_fraction: float = param(
        0.15, "duplicate_ngrams: the most share of characters covered by repeated word 5-grams")

    def validate(self, s: str) -> None:
        unknown = [f for f in self.filters if f not in QUALITY_FILTERS]
        _check(not unknown, f"{s}.filters has unknown filter {unknown[:1]} (known: {', '.join(QUALITY_FILTERS)})")
        _check(0 <= self.min_words < self.max_words,
               f"{s}.min_words={self.min_words} must be >= 0 and < {s}.max_words={self.max_words}")
        _check(0 < self.min_mean_word_length < self.max_mean_word_length,
               f"{s}.min_mean_word_length must be > 0 and < {s}.max_mean_word_length")
        for name in ("max_symbol_word_ratio", "min_alpha_word_fraction", "max_duplicate_line_fraction",
                     "max_top_ngram_fraction", "max_duplicate_ngram_fraction"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"{s}.{name}={value} must be between 0 and 1")


@dataclass
class PiiParams:
    """Personal data and secrets: replaced by typed placeholders (`<EMAIL>`, ...) or the document dropped."""
    kinds: list[str] = param(list(PII_KINDS), "what to find, any of: " + ", ".join(PII_KINDS) + " ([]: off)")
    action: Literal["replace", "drop"] = param("replace", "replace each find by its placeholder, or drop the "
                                                          "document")

    def validate(self, s: str) -> None:
        unknown = [k for k in self.kinds if k not in PII_KINDS]
        _check(not unknown, f"{s}.kinds has unknown kind {unknown[:1]} (known: {', '.join(PII_KINDS)})")


@dataclass
class NearDedupeParams:
    """One-permutation MinHash over word n-grams, LSH candidates, then Jaccard or containment.

    A later document is dropped when its estimated Jaccard with a kept one is at least `candidate_threshold`
    and either at least `threshold` or its containment is at least `containment`.
    """
    enabled: bool = param(True, "remove near-duplicate documents")
    ngram: int = param(3, "words per shingle: one changed word breaks `ngram` shingles")
    num_perm: int = param(256, "sketch bins, a power of two: better estimates, 2 bytes each per kept document")
    threshold: float = param(0.45, "estimated Jaccard similarity at or above which a document is a duplicate")
    containment: float = param(0.8, "... or the share of the smaller document's shingles found in the other")
    candidate_threshold: float = param(
        0.3, "below this Jaccard never a duplicate (containment included); sets the LSH bands")
    seed: int = param(1337, "the hash functions")

    def validate(self, s: str) -> None:
        _check(self.ngram >= 1, f"{s}.ngram={self.ngram} must be >= 1")
        _check(16 <= self.num_perm <= 1024 and self.num_perm & (self.num_perm - 1) == 0,
               f"{s}.num_perm={self.num_perm} must be a power of two between 16 and 1024")
        _check(0.0 < self.threshold < 1.0, f"{s}.threshold={self.threshold} must be between 0 and 1")
        _check(0.0 < self.containment <= 1.0, f"{s}.containment={self.containment} must be in (0, 1]")
        _check(0.0 < self.candidate_threshold <= min(self.threshold, self.containment),
               f"{s}.candidate_threshold={self.candidate_threshold} must be > 0 and <= "
               f"{s}.threshold and {s}.containment")
        _seed(s, self)


@dataclass
class LineDedupeParams:
    """Boilerplate: lines (or paragraphs) found in at least `min_docs` documents are cut."""
    enabled: bool = param(True, "cut boilerplate")
    unit: Literal["line", "paragraph"] = param("line", "what counts as one unit of boilerplate")
    min_chars: int = param(40, "shorter units are never cut, so common short lines survive")
    min_docs: int = param(5, "a unit in at least this many documents is boilerplate")

    def validate(self, s: str) -> None:
        _check(self.min_chars >= 1, f"{s}.min_chars={self.min_chars} must be >= 1")
        _check(self.min_docs >= 2, f"{s}.min_docs={self.min_docs} must be >= 2")


@dataclass
class CleanParams:
    """Normalize, filter, scrub and deduplicate the merged documents (data/interim/clean, reports/clean)."""
    workers: int = param(0, "processes for per-document work (0: all cores); the output is the same for any value")
    normalize: Literal["NFC", "NFKC", "none"] = param("NFC", "Unicode normal form")
    fix_mojibake: bool = param(
        False, "repair mis-decoded text (`Ã©` to `é`) with ftfy, and only that: quotes, ligatures, widths, "
               "entities and the normal form are left alone")
    strip_control: bool = param(
        True, "remove control and zero-width characters (keeps newlines, tabs, ZWJ/ZWNJ; form feed, vertical "
              "tab and NEL become newlines)")
    tidy_whitespace: bool = param(True, "CRLF to LF, trailing spaces, runs of blank lines")
    min_chars: int = param(100, "drop documents shorter than this after cleaning")
    max_chars: int = param(10_000_000, "drop documents longer than this (0: no limit; merge.max_doc_chars already "
                                       "bounds what arrives)")
    quality: QualityParams = section(QualityParams)
    pii: PiiParams = section(PiiParams)
    exact_dedupe: bool = param(True, "drop documents whose cleaned text was seen before")
    near_dedupe: NearDedupeParams = section(NearDedupeParams)
    line_dedupe: LineDedupeParams = section(LineDedupeParams)
    report_examples: int = param(5, "removed examples kept per reason in reports/clean/removed.md")
    engine: Engine = param("local", "where documents are cleaned: this machine, or Ray Data map_batches and "
                                    "group-bys (RAY_ADDRESS: a cluster); the same output")

    def validate(self, s: str) -> None:
        _check(self.workers >= 0, f"{s}.workers={self.workers} must be >= 0 (0: all cores)")
        _check(self.min_chars >= 0, f"{s}.min_chars={self.min_chars} must be >= 0")
        _check(self.max_chars == 0 or self.max_chars > self.min_chars,
               f"{s}.max_chars={self.max_chars} must be 0 (no limit) or > {s}.min_chars={self.min_chars}")
        _check(self.report_examples >= 0, f"{s}.report_examples={self.report_examples} must be >= 0")


# --------------------------------------------------------------------------- tokenizer

TokenizerKind = Literal["bpe", "sentencepiece_bpe", "sentencepiece_unigram"]


@dataclass
class TokenizerParams:
    """The tokenizer learned from a sample of the clean corpus (artifacts/tokenizer)."""
    kind: TokenizerKind = param(
        "bpe", "bpe: HF tokenizers, byte-level (tokenizer.json); sentencepiece_*: SentencePiece (spm.model)")
    vocab_size: int = param(8192, "tokens, special tokens included")
    min_frequency: int = param(2, "bpe only: merges seen fewer times are not learned")
    special_tokens: list[str] = param(
        ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        "the first ends every document in the shards; the others are the chat format's roles, reserved from the "
        "start so a pretrained model can be fine-tuned on chats (docs/sft.md)")
    byte_fallback: bool = param(
        True, "SentencePiece: unknown characters become byte tokens, never `<unk>` (with false, pack warns how "
              "many `<unk>` it wrote)")
    train_bytes: int = param(
        20_000_000, "text sampled, deterministically, to learn from (chunks of about 64K characters kept whole)")
    seed: int = param(1337, "the sample, and SentencePiece's randomness")

    def validate(self, s: str) -> None:
        _check(256 + len(self.special_tokens) < self.vocab_size <= 1_000_000,
               f"{s}.vocab_size={self.vocab_size} must be between {257 + len(self.special_tokens)} and 1000000")
        _check(self.min_frequency >= 1, f"{s}.min_frequency={self.min_frequency} must be >= 1")
        _check(len(self.special_tokens) >= 1 and all(self.special_tokens),
               f"{s}.special_tokens must list at least the end-of-text token, e.g. ['<|endoftext|>']")
        _check(len(set(self.special_tokens)) == len(self.special_tokens), f"{s}.special_tokens has duplicates")
        _positive(s, self, "train_bytes")
        _seed(s, self)


# --------------------------------------------------------------------------- pack

@dataclass
class PackParams:
    """The clean corpus as token shards, split into train and validation by document (data/shards)."""
    shard_tokens: int = param(50_000_000, "a shard closes at the first document end past this many tokens")
    val_fraction: float = param(0.1, "share of documents held out for validation, chosen by a hash of their id")
    seed: int = param(1337, "salts the split hash: change it to draw another split")
    engine: Engine = param("local", "where documents are tokenized: this machine, or Ray Data tasks "
                                    "(RAY_ADDRESS: a cluster); the same shards")

    def validate(self, s: str) -> None:
        _positive(s, self, "shard_tokens")
        _check(0.0 < self.val_fraction < 1.0, f"{s}.val_fraction={self.val_fraction} must be between 0 and 1")
        _seed(s, self)


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
        _positive(s, self, "n_layer", "n_head", "n_embd", "block_size", "mlp_ratio", "rope_base")
        _check(self.n_embd % self.n_head == 0,
               f"{s}.n_embd={self.n_embd} is not divisible by {s}.n_head={self.n_head}")
        _check(self.position != "rope" or (self.n_embd // self.n_head) % 2 == 0,
               f"rope needs an even head size, but {s}.n_embd/{s}.n_head={self.n_embd // self.n_head}")
        _check(0.0 <= self.dropout < 1.0, f"{s}.dropout={self.dropout} must be in [0, 1)")
        _check(self.logit_softcap >= 0.0, f"{s}.logit_softcap={self.logit_softcap} must be >= 0 (0: off)")


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
        _positive(s, self, "max_steps", "batch_size", "grad_accum_steps", "learning_rate",
                  "eval_interval", "eval_batches", "nproc")
        _check(0.0 <= self.min_lr_ratio <= 1.0, f"{s}.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        # A warmup as long as the run is cut to a tenth of it (schedule.effective_warmup), with a note.
        _check(self.warmup_steps >= 0, f"{s}.warmup_steps={self.warmup_steps} must be >= 0")
        _check(0.0 < self.decay_fraction <= 1.0, f"{s}.decay_fraction={self.decay_fraction} must be in (0, 1]")
        _check(self.weight_decay >= 0.0, f"{s}.weight_decay={self.weight_decay} must be >= 0")
        _check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0, f"{s}.beta1 and {s}.beta2 must be in [0, 1)")
        _check(self.muon_lr > 0.0, f"{s}.muon_lr={self.muon_lr} must be > 0")
        _check(0.0 <= self.muon_momentum < 1.0, f"{s}.muon_momentum={self.muon_momentum} must be in [0, 1)")
        _check(self.muon_weight_decay >= 0.0, f"{s}.muon_weight_decay={self.muon_weight_decay} must be >= 0")
        _check(self.grad_clip >= 0.0, f"{s}.grad_clip={self.grad_clip} must be >= 0 (0: off)")
        _check(self.checkpoint_interval >= 0, f"{s}.checkpoint_interval={self.checkpoint_interval} must be >= 0")
        _seed(s, self)


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
        _check(bool(self.train_files) and bool(self.val_files), f"{s}.train_files and {s}.val_files must not be empty")
        _positive(s, self, "max_new_tokens")
        _check(self.eval_items >= 0, f"{s}.eval_items={self.eval_items} must be >= 0 (0: all)")
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
        _check(self.max_bytes >= 0, f"{s}.max_bytes={self.max_bytes} must be >= 0 (0: all)")
        _check(self.n_prompts >= 0, f"{s}.n_prompts={self.n_prompts} must be >= 0")
        _positive(s, self, "batch_size")
        _check(self.max_new_tokens >= 0, f"{s}.max_new_tokens={self.max_new_tokens} must be >= 0")
        _check(self.temperature >= 0.0, f"{s}.temperature={self.temperature} must be >= 0 (0: greedy)")
        _check(self.top_k >= 0, f"{s}.top_k={self.top_k} must be >= 0 (0: no limit)")
        _check(all(name.endswith(".jsonl") for name in self.tasks),
               f"{s}.tasks={self.tasks}: each task file must be a .jsonl file (its stem names the metrics)")
        stems = [Path(name).stem for name in self.tasks]
        _check(len(set(stems)) == len(stems),
               f"{s}.tasks={self.tasks}: two files share a name, so their task_<name>_* metrics would collide")
        _seed(s, self)


# --------------------------------------------------------------------------- tasks

@dataclass
class TasksParams:
    """The benchmark tasks built from the validation documents (data/tasks); the stage also reads pack.seed and
    pack.val_fraction, for the split."""
    n_items: int = param(300, "items per task (fewer when the validation documents hold fewer)")
    context_lines: int = param(6, "non-blank lines of context before the passage or line to predict")
    choice_lines: int = param(2, "next_passage: non-blank lines in each choice")
    n_choices: int = param(4, "next_passage: the true next passage and n_choices - 1 from elsewhere in the work")
    min_word_chars: int = param(3, "last_word: the shortest last word (letters only) a line may end with")
    max_chars: int = param(600, "context plus its longest continuation: about 150 tokens, under block_size 256")
    seed: int = param(1337, "which items are drawn")

    def validate(self, s: str) -> None:
        _positive(s, self, "n_items", "context_lines", "choice_lines", "min_word_chars", "max_chars")
        _check(self.n_choices >= 2, f"{s}.n_choices={self.n_choices} must be >= 2")
        _seed(s, self)


# --------------------------------------------------------------------------- instructions

INSTRUCTION_KINDS = ("next_line", "missing_word", "first_word", "last_word", "followup", "speaker", "continue")


@dataclass
class InstructionsParams:
    """The instruction set built from the clean corpus (data/instructions), split as pack splits (pack.seed,
    pack.val_fraction)."""
    n_train: int = param(4000, "conversations from the train documents (fewer when they hold fewer)")
    n_val: int = param(300, "conversations from the validation documents")
    kinds: list[str] = param(list(INSTRUCTION_KINDS), "mixed in equal shares, any of: " + ", ".join(INSTRUCTION_KINDS))
    max_chars: int = param(500, "of a conversation's contents: about 150 tokens, under block_size 256")
    system_fraction: float = param(0.2, "share of conversations that open with a system prompt")
    seed: int = param(1337, "which items are drawn")

    def validate(self, s: str) -> None:
        _positive(s, self, "n_train", "n_val", "max_chars")
        unknown = [k for k in self.kinds if k not in INSTRUCTION_KINDS]
        _check(bool(self.kinds) and not unknown,
               f"{s}.kinds={self.kinds} must list some of: {', '.join(INSTRUCTION_KINDS)}")
        _check(len(set(self.kinds)) == len(self.kinds), f"{s}.kinds has duplicates")
        _check(0.0 <= self.system_fraction <= 1.0, f"{s}.system_fraction={self.system_fraction} must be in [0, 1]")
        _seed(s, self)


# --------------------------------------------------------------------------- export

@dataclass
class ExportParams:
    """The Hugging Face model folders (artifacts/hf, artifacts/hf-sft; docs/generate.md)."""
    dtype: Literal["float32", "bfloat16", "float16"] = param("float32", "the weights' type in model.safetensors")

    def validate(self, s: str) -> None:
        pass  # the Literal type is the whole check


SECTIONS: dict[str, type] = {  # in params.yaml's order
    "merge": MergeParams,
    "clean": CleanParams,
    "tokenizer": TokenizerParams,
    "pack": PackParams,
    "model": ModelParams,
    "train": TrainParams,
    "eval": EvalParams,
    "tasks": TasksParams,
    "instructions": InstructionsParams,
    "sft": SftParams,
    "export": ExportParams,
}


# --------------------------------------------------------------------------- parsing

_FLOAT_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the field's type hint; return it converted where lossless."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        _check(value in choices, f"{key}={value!r} is not one of: {', '.join(map(str, choices))}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        _check(isinstance(value, list), f"{key} must be a list, got {value!r}")
        return [_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        _check(isinstance(value, dict), f"{key} must be a mapping of keys, got {value!r}")
        return _build(hint, value, key)
    if hint is bool:
        _check(isinstance(value, bool), f"{key}={value!r} must be true or false")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{key}={value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, str) and _FLOAT_LIKE.match(value):
            raise UserError(f"params.yaml: {key}={value!r} was read as a string: "
                            f"YAML needs a dot in a float, write it like 3.0e-4")
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}={value!r} must be a number")
        return float(value)
    if hint is str:
        _check(isinstance(value, str), f"{key}={value!r} must be a string")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _build(cls: type, raw: dict, section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise UserError(f"params.yaml: unknown key {section}.{unknown[0]} (known keys: {', '.join(names)})")
    values = {name: _coerce(raw[name], hints[name], f"{section}.{name}") for name in names if name in raw}
    obj = cls(**values)
    obj.validate(section)
    return obj


def parse_section(name: str, raw: dict | None) -> Any:
    """Typed, validated params of one section from its raw mapping (missing keys take defaults)."""
    _check(raw is None or isinstance(raw, dict), f"section {name} must be a mapping of keys, got {raw!r}")
    return _build(SECTIONS[name], raw or {}, name)


def read_params_file(path: str | Path = PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run the stage from the project root, next to params.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    _check(isinstance(data, dict), "the top level must be a mapping of sections")
    return data


def load_params(keys: list[str], path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate the named sections of params.yaml, by name.

    A dotted key (`pack.seed`) reads that one key of its section: its value comes
    back under the dotted name, checked as the section checks it, and no other key
    of the section is read (a stage lists exactly what it reads in dvc.yaml).
    """
    data = read_params_file(path)
    params = {}
    for key in keys:
        section, _, name = key.partition(".")
        raw = data.get(section)
        if name:
            one = {name: raw[name]} if isinstance(raw, dict) and name in raw else {}
            params[key] = getattr(parse_section(section, one), name)
        else:
            params[key] = parse_section(section, raw)
    return params


def as_dict(params: Any) -> dict:
    return dataclasses.asdict(params)
