"""The data stages' sections: merge, clean, tokenizer, pack, and the tasks and instructions built from the corpus."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stages.lib.data.pii.kinds import PII_KINDS
from stages.lib.params.fields import check, check_seed, param, positive, section

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
        check(self.max_doc_chars >= 0, f"{s}.max_doc_chars={self.max_doc_chars} must be >= 0 (0: no limit)")
        check(all(e.startswith(".") for e in self.extensions),
               f"{s}.extensions={self.extensions}: each extension must start with '.', e.g. '.txt'")
        check(bool(self.text_field), f"{s}.text_field must not be empty")


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
        check(not unknown, f"{s}.filters has unknown filter {unknown[:1]} (known: {', '.join(QUALITY_FILTERS)})")
        check(0 <= self.min_words < self.max_words,
               f"{s}.min_words={self.min_words} must be >= 0 and < {s}.max_words={self.max_words}")
        check(0 < self.min_mean_word_length < self.max_mean_word_length,
               f"{s}.min_mean_word_length must be > 0 and < {s}.max_mean_word_length")
        for name in ("max_symbol_word_ratio", "min_alpha_word_fraction", "max_duplicate_line_fraction",
                     "max_top_ngram_fraction", "max_duplicate_ngram_fraction"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"{s}.{name}={value} must be between 0 and 1")


@dataclass
class PiiParams:
    """Personal data and secrets: replaced by typed placeholders (`<EMAIL>`, ...) or the document dropped."""
    kinds: list[str] = param(list(PII_KINDS), "what to find, any of: " + ", ".join(PII_KINDS) + " ([]: off)")
    action: Literal["replace", "drop"] = param("replace", "replace each find by its placeholder, or drop the "
                                                          "document")

    def validate(self, s: str) -> None:
        unknown = [k for k in self.kinds if k not in PII_KINDS]
        check(not unknown, f"{s}.kinds has unknown kind {unknown[:1]} (known: {', '.join(PII_KINDS)})")


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
        check(self.ngram >= 1, f"{s}.ngram={self.ngram} must be >= 1")
        check(16 <= self.num_perm <= 1024 and self.num_perm & (self.num_perm - 1) == 0,
               f"{s}.num_perm={self.num_perm} must be a power of two between 16 and 1024")
        check(0.0 < self.threshold < 1.0, f"{s}.threshold={self.threshold} must be between 0 and 1")
        check(0.0 < self.containment <= 1.0, f"{s}.containment={self.containment} must be in (0, 1]")
        check(0.0 < self.candidate_threshold <= min(self.threshold, self.containment),
               f"{s}.candidate_threshold={self.candidate_threshold} must be > 0 and <= "
               f"{s}.threshold and {s}.containment")
        check_seed(s, self)


@dataclass
class LineDedupeParams:
    """Boilerplate: lines (or paragraphs) found in at least `min_docs` documents are cut."""
    enabled: bool = param(True, "cut boilerplate")
    unit: Literal["line", "paragraph"] = param("line", "what counts as one unit of boilerplate")
    min_chars: int = param(40, "shorter units are never cut, so common short lines survive")
    min_docs: int = param(5, "a unit in at least this many documents is boilerplate")

    def validate(self, s: str) -> None:
        check(self.min_chars >= 1, f"{s}.min_chars={self.min_chars} must be >= 1")
        check(self.min_docs >= 2, f"{s}.min_docs={self.min_docs} must be >= 2")


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
        check(self.workers >= 0, f"{s}.workers={self.workers} must be >= 0 (0: all cores)")
        check(self.min_chars >= 0, f"{s}.min_chars={self.min_chars} must be >= 0")
        check(self.max_chars == 0 or self.max_chars > self.min_chars,
               f"{s}.max_chars={self.max_chars} must be 0 (no limit) or > {s}.min_chars={self.min_chars}")
        check(self.report_examples >= 0, f"{s}.report_examples={self.report_examples} must be >= 0")


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
        check(256 + len(self.special_tokens) < self.vocab_size <= 1_000_000,
               f"{s}.vocab_size={self.vocab_size} must be between {257 + len(self.special_tokens)} and 1000000")
        check(self.min_frequency >= 1, f"{s}.min_frequency={self.min_frequency} must be >= 1")
        check(len(self.special_tokens) >= 1 and all(self.special_tokens),
               f"{s}.special_tokens must list at least the end-of-text token, e.g. ['<|endoftext|>']")
        check(len(set(self.special_tokens)) == len(self.special_tokens), f"{s}.special_tokens has duplicates")
        positive(s, self, "train_bytes")
        check_seed(s, self)


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
        positive(s, self, "shard_tokens")
        check(0.0 < self.val_fraction < 1.0, f"{s}.val_fraction={self.val_fraction} must be between 0 and 1")
        check_seed(s, self)


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
        positive(s, self, "n_items", "context_lines", "choice_lines", "min_word_chars", "max_chars")
        check(self.n_choices >= 2, f"{s}.n_choices={self.n_choices} must be >= 2")
        check_seed(s, self)


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
        positive(s, self, "n_train", "n_val", "max_chars")
        unknown = [k for k in self.kinds if k not in INSTRUCTION_KINDS]
        check(bool(self.kinds) and not unknown,
               f"{s}.kinds={self.kinds} must list some of: {', '.join(INSTRUCTION_KINDS)}")
        check(len(set(self.kinds)) == len(self.kinds), f"{s}.kinds has duplicates")
        check(0.0 <= self.system_fraction <= 1.0, f"{s}.system_fraction={self.system_fraction} must be in [0, 1]")
        check_seed(s, self)


