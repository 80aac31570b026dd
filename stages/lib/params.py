"""Typed params: one dataclass per params.yaml section, the one place for defaults and validation.

`load_params(["model", "train"])` reads params.yaml, checks every key's type,
rejects unknown keys, runs each section's `validate()` and returns the typed
sections. Error messages name the dotted key, e.g.
`model.n_embd=100 is not divisible by model.n_head=6`.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from stages.lib.errors import UserError

PARAMS_FILE = "params.yaml"


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
    input_dir: str = "data/raw"
    # Files with these extensions (optionally followed by .gz) become documents; others are counted and skipped.
    extensions: list[str] = field(default_factory=lambda: [".txt", ".md", ".jsonl", ".parquet"])
    # How a text file becomes documents: the whole file, one per line, or blank-line-separated blocks.
    doc_mode: Literal["file", "line", "paragraph"] = "file"
    text_field: str = "text"  # field holding the text in .jsonl records and .parquet columns
    encoding_errors: Literal["replace", "skip", "error"] = "replace"  # invalid UTF-8 in a file
    bad_files: Literal["error", "skip"] = "error"  # binary, unreadable or malformed files
    # Longer documents are skipped while they are read, never held whole (0: no limit), which bounds memory.
    max_doc_chars: int = 10_000_000
    engine: Engine = "local"  # ray: read files as Ray Data tasks (RAY_ADDRESS: a cluster); same output

    def validate(self, s: str) -> None:
        _check(self.max_doc_chars >= 0, f"{s}.max_doc_chars={self.max_doc_chars} must be >= 0 (0: no limit)")
        _check(all(e.startswith(".") for e in self.extensions),
               f"{s}.extensions={self.extensions}: each extension must start with '.', e.g. '.txt'")
        _check(bool(self.text_field), f"{s}.text_field must not be empty")


# --------------------------------------------------------------------------- clean

QUALITY_FILTERS = ("word_count", "mean_word_length", "symbol_ratio", "alpha_words",
                   "duplicate_lines", "top_ngrams", "duplicate_ngrams")
PII_KINDS = ("email", "phone", "ipv4", "ipv6", "credit_card", "iban", "secret")


@dataclass
class QualityParams:
    """Gopher/C4-style document filters: `filters` lists the enabled ones, the rest are thresholds."""
    filters: list[str] = field(default_factory=lambda: list(QUALITY_FILTERS))
    min_words: int = 50
    max_words: int = 2_000_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # '#' and '...' per word
    min_alpha_word_fraction: float = 0.8  # words with at least one letter
    max_duplicate_line_fraction: float = 0.4  # share of lines (by count) that repeat an earlier line
    max_top_ngram_fraction: float = 0.2  # characters covered by the most frequent word 2-gram
    max_duplicate_ngram_fraction: float = 0.15  # characters covered by repeated word 5-grams

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
    """Personal data replaced by typed placeholders (<EMAIL>, ...) or the document dropped."""
    kinds: list[str] = field(default_factory=lambda: list(PII_KINDS))  # [] turns scrubbing off
    action: Literal["replace", "drop"] = "replace"

    def validate(self, s: str) -> None:
        unknown = [k for k in self.kinds if k not in PII_KINDS]
        _check(not unknown, f"{s}.kinds has unknown kind {unknown[:1]} (known: {', '.join(PII_KINDS)})")


@dataclass
class LineDedupeParams:
    """Boilerplate removal: lines (or paragraphs) found in at least `min_docs` documents are cut."""
    enabled: bool = True
    unit: Literal["line", "paragraph"] = "line"
    min_chars: int = 40  # shorter lines are never cut, so common short lines survive
    min_docs: int = 5

    def validate(self, s: str) -> None:
        _check(self.min_chars >= 1, f"{s}.min_chars={self.min_chars} must be >= 1")
        _check(self.min_docs >= 2, f"{s}.min_docs={self.min_docs} must be >= 2")


@dataclass
class NearDedupeParams:
    """One-permutation MinHash over word n-grams, LSH candidates, then Jaccard or containment.

    A later document is dropped when its estimated Jaccard with a kept one is at
    least candidate_threshold and either at least threshold or its containment
    (shared shingles over the smaller document's) is at least containment.
    The LSH bands are derived from candidate_threshold (stages/lib/data/near_dedupe.py).
    """
    enabled: bool = True
    ngram: int = 3
    num_perm: int = 256  # bins of the sketch: a power of two
    threshold: float = 0.45  # estimated Jaccard similarity at or above which a document is a duplicate
    containment: float = 0.8  # ... or the share of the smaller document found in the other
    candidate_threshold: float = 0.3  # pairs below this Jaccard are never duplicates (and rarely compared)
    seed: int = 1337

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
class CleanParams:
    workers: int = 0  # processes for per-document work (0: all cores); output is the same for any value
    normalize: Literal["NFC", "NFKC", "none"] = "NFC"
    fix_mojibake: bool = False  # repair mis-decoded text with ftfy before normalizing
    strip_control: bool = True  # remove control and zero-width characters (keeps \n and \t)
    tidy_whitespace: bool = True  # CRLF to LF, trailing spaces, runs of blank lines
    min_chars: int = 100  # drop documents shorter than this after cleaning
    max_chars: int = 10_000_000  # drop documents longer than this (0: no limit; merge.max_doc_chars bounds it)
    quality: QualityParams = field(default_factory=QualityParams)
    pii: PiiParams = field(default_factory=PiiParams)
    exact_dedupe: bool = True  # drop documents whose cleaned text was seen before
    near_dedupe: NearDedupeParams = field(default_factory=NearDedupeParams)
    line_dedupe: LineDedupeParams = field(default_factory=LineDedupeParams)
    report_examples: int = 5  # removed examples kept per reason in reports/clean/
    engine: Engine = "local"  # ray: Ray Data map_batches and groupbys (RAY_ADDRESS: a cluster); same output

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
    kind: TokenizerKind = "bpe"
    vocab_size: int = 8192
    min_frequency: int = 2
    # The first special token ends every document in the shards. The chat format's role tokens are reserved
    # from the start (stages/lib/tokens/chat.py), so a pretrained model can be fine-tuned on chats.
    special_tokens: list[str] = field(
        default_factory=lambda: ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"])
    byte_fallback: bool = True  # SentencePiece: unknown characters become byte tokens, never <unk>
    train_bytes: int = 20_000_000  # how much text (a deterministic sample) the tokenizer learns from
    seed: int = 1337

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
    shard_tokens: int = 50_000_000  # a shard is closed at the first document end past this many tokens
    val_fraction: float = 0.1  # share of documents (by a hash of their id) held out for validation
    seed: int = 1337  # salts the split hash: change it to draw another split
    engine: Engine = "local"  # ray: tokenize as Ray Data tasks (RAY_ADDRESS: a cluster); same shards

    def validate(self, s: str) -> None:
        _positive(s, self, "shard_tokens")
        _check(0.0 < self.val_fraction < 1.0, f"{s}.val_fraction={self.val_fraction} must be between 0 and 1")
        _seed(s, self)


# --------------------------------------------------------------------------- model

@dataclass
class ModelParams:
    n_layer: int = 4
    n_head: int = 3
    n_embd: int = 192
    block_size: int = 256  # training window: the shards hold a stream, so this never re-tokenizes
    dropout: float = 0.0
    # Architecture switches; the defaults are the modern choices that learn fastest.
    position: Literal["rope", "learned"] = "rope"
    rope_base: float = 10000.0
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    mlp: Literal["relu2", "swiglu", "gelu"] = "relu2"
    mlp_ratio: float = 4.0
    qk_norm: bool = True
    tie_embeddings: bool = True
    logit_softcap: float = 0.0  # 0: off; else logits = c * tanh(logits / c)
    bias: bool = False

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
    max_steps: int = 2000
    batch_size: int = 16  # windows per micro-batch (per process)
    grad_accum_steps: int = 1
    learning_rate: float = 4.0e-3  # AdamW's (all parameters, or with muon those Muon does not take)
    min_lr_ratio: float = 0.0  # the schedule ends at learning_rate * min_lr_ratio
    warmup_steps: int = 50
    schedule: Literal["cosine", "wsd"] = "wsd"
    decay_fraction: float = 0.3  # wsd: share of steps spent decaying at the end
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    # muon: Muon on the blocks' weight matrices, AdamW on embeddings, head, gains and biases (training/optim.py)
    optimizer: Literal["adamw", "muon"] = "muon"
    muon_lr: float = 0.04  # Muon's base lr, on the same schedule as learning_rate
    muon_momentum: float = 0.95
    muon_weight_decay: float = 0.0  # decoupled, per step: weights shrink by muon_lr (scheduled) * this
    grad_clip: float = 1.0  # 0: off
    eval_interval: int = 100
    eval_batches: int = 10
    checkpoint_interval: int = 100  # steps between resume-state saves (0: only on Ctrl-C / SIGTERM)
    device: Device = "auto"
    precision: Precision = "auto"
    compile: bool = True  # torch.compile: about 3x faster on this CPU; eager where no compiler is found
    deterministic: bool = True  # torch.use_deterministic_algorithms: same params and data, same weights
    grad_checkpointing: bool = False
    nproc: int = 1  # > 1: torchrun with this many processes
    # With nproc > 1: ddp keeps the whole model on every process; fsdp shards parameters, gradients and
    # optimizer state across them (for models that do not fit one GPU with their optimizer state).
    strategy: Literal["ddp", "fsdp"] = "ddp"
    seed: int = 1337

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
    """Instruction fine-tuning (stages/sft.py). The schedule is its own; device, precision, compile,
    determinism, the optimizer (Muon's lr scaled as learning_rate is), betas, weight decay, clipping and
    nproc/strategy come from train.*."""
    train_files: list[str] = field(default_factory=lambda: ["data/instructions/train.jsonl"])  # chat or Alpaca
    val_files: list[str] = field(default_factory=lambda: ["data/instructions/val.jsonl"])
    bad_records: Literal["error", "skip"] = "error"  # also for conversations longer than model.block_size
    max_steps: int = 300
    batch_size: int = 16  # conversations per micro-batch (per process), each padded to the longest's length
    grad_accum_steps: int = 1
    learning_rate: float = 1.0e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_fraction: float = 0.2
    eval_interval: int = 50
    eval_batches: int = 10
    eval_items: int = 300  # held-out conversations answered greedily for exact-match accuracy (0: all)
    max_new_tokens: int = 32  # the longest answer generated for exact match
    seed: int = 1337

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
    # Validation text scored: whole documents in the split's order while their UTF-8 bytes stay within this
    # (at least one; 0: all). Chosen by bytes, so runs with different tokenizers score the same text.
    max_bytes: int = 700_000
    batch_size: int = 8
    heldout: list[str] = field(default_factory=list)  # extra text files scored as their own split
    device: Device = "auto"
    precision: Precision = "auto"
    prompts: list[str] = field(default_factory=list)  # for metrics/samples.md; empty: drawn from validation lines
    n_prompts: int = 3  # how many to draw when eval.prompts is empty (seeded by eval.seed)
    max_new_tokens: int = 120
    temperature: float = 0.8
    top_k: int = 40
    seed: int = 1337
    # Benchmark task files (JSONL, multiple choice or cloze), each reported as task_<file stem>_<metric>.
    tasks: list[str] = field(default_factory=lambda: ["data/tasks/next_passage.jsonl",
                                                      "data/tasks/last_word.jsonl"])

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
    """The two benchmark tasks built from the validation documents (stages/tasks.py)."""
    n_items: int = 300  # items per task (fewer when the validation documents hold fewer)
    context_lines: int = 6  # non-blank lines of context before the passage or line to predict
    choice_lines: int = 2  # next_passage: non-blank lines in each choice
    n_choices: int = 4  # next_passage: the true next passage and n_choices - 1 from elsewhere in the work
    min_word_chars: int = 3  # last_word: the shortest last word (letters only) a line may end with
    max_chars: int = 600  # context plus its longest continuation: about 150 tokens, under block_size 256
    seed: int = 1337

    def validate(self, s: str) -> None:
        _positive(s, self, "n_items", "context_lines", "choice_lines", "min_word_chars", "max_chars")
        _check(self.n_choices >= 2, f"{s}.n_choices={self.n_choices} must be >= 2")
        _seed(s, self)


# --------------------------------------------------------------------------- instructions

INSTRUCTION_KINDS = ("next_line", "missing_word", "first_word", "last_word", "followup", "speaker", "continue")


@dataclass
class InstructionsParams:
    """The instruction set built from the clean corpus (stages/instructions.py), split as pack splits."""
    n_train: int = 4000  # conversations from the train documents (fewer when they hold fewer)
    n_val: int = 300  # conversations from the validation documents
    kinds: list[str] = field(default_factory=lambda: list(INSTRUCTION_KINDS))  # mixed in equal shares
    max_chars: int = 500  # of a conversation's contents: about 150 tokens, well under block_size 256
    system_fraction: float = 0.2  # share of conversations that open with a system prompt
    seed: int = 1337

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
    """The Hugging Face model folder (stages/export.py)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # of the weights in model.safetensors

    def validate(self, s: str) -> None:
        pass  # the Literal type is the whole check


SECTIONS: dict[str, type] = {
    "merge": MergeParams,
    "clean": CleanParams,
    "tokenizer": TokenizerParams,
    "pack": PackParams,
    "model": ModelParams,
    "train": TrainParams,
    "sft": SftParams,
    "eval": EvalParams,
    "export": ExportParams,
    "instructions": InstructionsParams,
    "tasks": TasksParams,
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
