"""Gopher-style document quality filters: is this document real prose, or junk?

`quality_failure(text, params)` returns the name of the first enabled filter
(in `QUALITY_FILTERS` order) the document fails, or None. The filters follow
Gopher's MassiveWeb rules (Rae et al. 2021, "Scaling Language Models",
appendix A.1.1 and table A1):

- word_count:       min_words <= words <= max_words
- mean_word_length: mean characters per word within bounds
- symbol_ratio:     ('#' + '...' + '…') occurrences per word <= max
- alpha_words:      share of words with at least one alphabetic character >= min
- duplicate_lines:  share of non-empty lines that repeat an earlier line <= max
- top_ngrams:       characters covered by the most frequent word 2-gram / all word characters <= max
- duplicate_ngrams: characters covered by word 5-grams occurring more than once / all word characters <= max

Definitions, where Gopher leaves a choice open or we differ:
- A word is a whitespace-separated token (`str.split()`), compared verbatim;
  its length is counted in characters (code points). "Word characters" is the
  sum of word lengths, so whitespace never counts.
- Lines are compared after `strip()`; blank lines are ignored.
- N-gram "characters covered" counts each word once even where occurrences
  overlap (Gopher says so for duplicate n-grams; we do the same for the top
  n-gram so both fractions stay in [0, 1]). A top 2-gram that occurs only once
  is not a repetition and scores 0 (matters only for docs of a few words).
- Repeated 5-grams count all their occurrences, the first one included
  ("n-grams that occur more than once"; datatrove's port skips the first).
- Gopher bounds '#' and ellipses per word separately; we bound their sum.
- Gopher also bounds the *characters* in duplicate lines (0.2), 3/4-grams and
  6..10-grams; only the filters above are implemented.

Speed: one pass of numpy over the code points gives word lengths and the
alpha test; Arrow splits the words and gives them exact integer ids in C++
(dictionary_encode), and n-grams are compared as packed ids, never as Python
strings or tuples.
Everything is computed lazily, so a document failing an early filter costs little.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.lib.params import QUALITY_FILTERS, QualityParams

ELLIPSES = ("...", "\u2026")
N_DUP = 5  # Gopher's duplicate n-gram filter for n=5 (it also has 6..10)

SPACE, ALPHA, ALNUM = 1, 2, 4  # bits of the per-code-point class table (near_dedupe uses ALNUM)
_CLASSES: np.ndarray | None = None


def char_classes() -> np.ndarray:
    """uint8 class bits (SPACE, ALPHA, ALNUM) for every code point: built once per process (~40 ms, 1.1 MB).

    numpy's string ufuncs apply str.isspace/isalpha/isalnum's Unicode tables in C, to every code point
    viewed as a one-character string (code point 0 reads as "": in no class, as chr(0) is in none).
    """
    global _CLASSES
    if _CLASSES is None:
        chars = np.arange(0x110000, dtype=np.uint32).view("U1")
        _CLASSES = (SPACE * np.strings.isspace(chars) | ALPHA * np.strings.isalpha(chars)
                    | ALNUM * np.strings.isalnum(chars)).astype(np.uint8)
    return _CLASSES


def _coverage(starts: np.ndarray, n: int, length: int) -> np.ndarray:
    """Mask over `length` words: True where a word lies inside an n-gram starting at one of `starts`."""
    # +1 where a covering n-gram opens, -1 where it closes; a positive running sum means covered.
    delta = np.bincount(starts, minlength=length + 1) - np.bincount(starts + n, minlength=length + 1)
    return np.cumsum(delta[:length]) > 0


def _dense_ids(values: np.ndarray | pa.Array) -> np.ndarray:
    """Equal values get equal ids 0, 1, 2, ... in order of first appearance (Arrow's hash table, no sort)."""
    return pa.array(values).dictionary_encode().indices.to_numpy().astype(np.int64)


class DocStats:
    """Per-document counts shared by the filters; each is computed on first use."""

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def _classes(self) -> np.ndarray:
        codepoints = np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), np.uint32)
        return char_classes()[codepoints]

    @cached_property
    def _word_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (exclusive) character index of every word: where space and non-space meet."""
        space = (self._classes & SPACE).view(np.int8)
        edges = np.diff(space, prepend=np.int8(1), append=np.int8(1))
        return np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)

    @cached_property
    def num_words(self) -> int:
        return len(self._word_bounds[0])

    @cached_property
    def word_lengths(self) -> np.ndarray:
        starts, ends = self._word_bounds
        return ends - starts

    @cached_property
    def word_chars(self) -> int:
        return int(self.word_lengths.sum())

    @cached_property
    def alpha_words(self) -> int:
        if self.num_words == 0:
            return 0
        # Segments run from one word start to the next; the spaces in between are never alphabetic.
        alpha = (self._classes & ALPHA).view(bool)
        return int(np.count_nonzero(np.logical_or.reduceat(alpha, self._word_bounds[0])))

    @cached_property
    def word_ids(self) -> np.ndarray:
        # Arrow splits in C++ on exactly the characters str.isspace() accepts (checked over all
        # code points), so these words line up with _word_bounds. A lone surrogate, which UTF-8
        # cannot hold, becomes "?": still one non-space character.
        utf8 = self.text.encode("utf-8", "replace")
        words = pc.utf8_split_whitespace(pa.array([utf8], pa.large_string())).flatten()
        return _dense_ids(words)

    @cached_property
    def bigram_ids(self) -> np.ndarray:
        """Dense id per word 2-gram (position i covers words i and i+1); equal ids iff equal 2-grams."""
        ids = self.word_ids
        return _dense_ids(ids[:-1] * (int(ids.max(initial=0)) + 1) + ids[1:])

    def repeated_ngram_starts(self, n: int) -> np.ndarray:
        """Start positions of the word n-grams (n >= 2) that occur more than once in the document.

        A repeated n-gram is made of repeated 2-grams, and in prose only ~2% of
        positions pass that test, so exact n-gram ids are built for those alone:
        the ids of the 2-grams at offsets 0, 2, 4, ..., n-2 pin down the n-gram.
        """
        bigrams = self.bigram_ids
        repeated = np.bincount(bigrams)[bigrams] > 1
        count = len(bigrams) - (n - 2)  # number of n-gram positions
        if count <= 0:
            return np.zeros(0, np.int64)
        candidate = repeated[:count].copy()
        for offset in range(1, n - 1):
            candidate &= repeated[offset:offset + count]
        starts = np.flatnonzero(candidate)
        ids = np.zeros(len(starts), np.int64)
        for offset in sorted({*range(0, n - 1, 2), n - 2}):
            # Both factors stay below len(bigrams), so the packed value never overflows.
            packed = ids * len(bigrams) + bigrams[starts + offset]
            ids = np.unique(packed, return_inverse=True)[1]  # few candidates: sorting is fine
        return starts[np.bincount(ids)[ids] > 1] if len(ids) else starts


# --------------------------------------------------------------------------- filters
# Each returns True when the document passes.

def _word_count(s: DocStats, p: QualityParams) -> bool:
    return p.min_words <= s.num_words <= p.max_words


def _mean_word_length(s: DocStats, p: QualityParams) -> bool:
    if s.num_words == 0:
        return False
    return p.min_mean_word_length <= s.word_chars / s.num_words <= p.max_mean_word_length


def _symbol_ratio(s: DocStats, p: QualityParams) -> bool:
    symbols = s.text.count("#") + sum(s.text.count(e) for e in ELLIPSES)
    return symbols / max(s.num_words, 1) <= p.max_symbol_word_ratio


def _alpha_words(s: DocStats, p: QualityParams) -> bool:
    if s.num_words == 0:
        return False
    return s.alpha_words / s.num_words >= p.min_alpha_word_fraction


def duplicate_line_fraction(text: str) -> float:
    """Share of non-empty (stripped) lines that repeat an earlier line of the same text."""
    lines = [line for line in map(str.strip, text.split("\n")) if line]
    if not lines:
        return 0.0
    return (len(lines) - len(set(lines))) / len(lines)


def _duplicate_lines(s: DocStats, p: QualityParams) -> bool:
    return duplicate_line_fraction(s.text) <= p.max_duplicate_line_fraction


def top_ngram_fraction(s: DocStats) -> float:
    """Characters covered by the most frequent word 2-gram / all word characters."""
    if s.num_words < 2:
        return 0.0
    ids = s.bigram_ids
    counts = np.bincount(ids)
    top = int(np.argmax(counts))  # ties: the 2-gram seen first in the document
    if counts[top] < 2:
        return 0.0
    covered = _coverage(np.flatnonzero(ids == top), 2, s.num_words)
    return float(s.word_lengths[covered].sum()) / s.word_chars


def duplicate_ngram_fraction(s: DocStats, n: int = N_DUP) -> float:
    """Characters covered by word n-grams that occur more than once / all word characters."""
    starts = s.repeated_ngram_starts(n) if s.num_words >= n else []
    if len(starts) == 0:
        return 0.0
    covered = _coverage(starts, n, s.num_words)
    return float(s.word_lengths[covered].sum()) / s.word_chars


def _top_ngrams(s: DocStats, p: QualityParams) -> bool:
    return top_ngram_fraction(s) <= p.max_top_ngram_fraction


def _duplicate_ngrams(s: DocStats, p: QualityParams) -> bool:
    return duplicate_ngram_fraction(s) <= p.max_duplicate_ngram_fraction


FILTERS = {
    "word_count": _word_count,
    "mean_word_length": _mean_word_length,
    "symbol_ratio": _symbol_ratio,
    "alpha_words": _alpha_words,
    "duplicate_lines": _duplicate_lines,
    "top_ngrams": _top_ngrams,
    "duplicate_ngrams": _duplicate_ngrams,
}
assert tuple(FILTERS) == QUALITY_FILTERS


# What each filter measures, and the clean.quality keys of its bounds (min, max; None where unbounded).
BOUNDS = {
    "word_count": ("min_words", "max_words"),
    "mean_word_length": ("min_mean_word_length", "max_mean_word_length"),
    "symbol_ratio": (None, "max_symbol_word_ratio"),
    "alpha_words": ("min_alpha_word_fraction", None),
    "duplicate_lines": (None, "max_duplicate_line_fraction"),
    "top_ngrams": (None, "max_top_ngram_fraction"),
    "duplicate_ngrams": (None, "max_duplicate_ngram_fraction"),
}


def measure(name: str, s: DocStats) -> float:
    """The value filter `name` compares with its bounds (the filters above test exactly these)."""
    if name == "word_count":
        return s.num_words
    if name == "mean_word_length":
        return s.word_chars / s.num_words if s.num_words else 0.0
    if name == "symbol_ratio":
        return (s.text.count("#") + sum(s.text.count(e) for e in ELLIPSES)) / max(s.num_words, 1)
    if name == "alpha_words":
        return s.alpha_words / s.num_words if s.num_words else 0.0
    if name == "duplicate_lines":
        return duplicate_line_fraction(s.text)
    return top_ngram_fraction(s) if name == "top_ngrams" else duplicate_ngram_fraction(s)


def explain(name: str, s: DocStats, params: QualityParams) -> str:
    """Why filter `name` failed: the measured value and the bound it crossed, with its params key."""
    value = measure(name, s)
    low, high = BOUNDS[name]
    if low is not None and not value >= getattr(params, low):
        return f"{name} {value:.3g} < clean.quality.{low} {getattr(params, low):g}"
    return f"{name} {value:.3g} > clean.quality.{high} {getattr(params, high):g}"


def quality_check(text: str, params: QualityParams) -> tuple[str, str] | None:
    """The first enabled filter (in QUALITY_FILTERS order) the document fails and why, or None if it passes."""
    enabled = set(params.filters)
    stats = DocStats(text)
    for name, passes in FILTERS.items():
        if name in enabled and not passes(stats, params):
            return name, explain(name, stats, params)
    return None


def quality_failure(text: str, params: QualityParams) -> str | None:
    """Name of the first enabled filter (in QUALITY_FILTERS order) the document fails, or None if it passes."""
    failed = quality_check(text, params)
    return failed[0] if failed else None
