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

Definitions, where Gopher leaves a choice open:
- A word is a whitespace-separated token (`str.split()`), compared verbatim;
  its length is counted in characters (code points). "Word characters" is the
  sum of word lengths, so whitespace never counts.
- Lines are compared after `strip()`; blank lines are ignored.
- N-gram "characters covered" counts each word once even where occurrences
  overlap (Gopher says so for duplicate n-grams; we do the same for the top
  n-gram so both fractions stay in [0, 1]). A top 2-gram that occurs only once
  is not a repetition and scores 0 (matters only for docs of a few words).
- Repeated 5-grams count all their occurrences, the first one included (the
  brief's "n-grams that occur more than once"; datatrove skips the first).

Speed: one pass of numpy over the code points gives word lengths and the
alpha test; words become exact integer ids in C++ (pyarrow split and
dictionary_encode) and n-grams are compared as exact packed ids (pandas.factorize),
never as Python strings or tuples. Everything is computed lazily,
so a document that fails an early filter costs little.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stages.lib.params import QUALITY_FILTERS, QualityParams

ELLIPSES = ("...", "\u2026")
N_TOP = 2  # Gopher's top n-gram filter for n=2 (it also has 3 and 4, with lower thresholds)
N_DUP = 5  # Gopher's duplicate n-gram filter for n=5 (it also has 6..10)

SPACE, ALPHA = 1, 2  # bits of the per-code-point class table
_CLASSES: np.ndarray | None = None


def _char_classes() -> np.ndarray:
    """uint8 class bits (SPACE, ALPHA) for every code point: built once per process (~0.1 s, 1.1 MB)."""
    global _CLASSES
    if _CLASSES is None:
        chars = map(chr, range(0x110000))
        _CLASSES = np.fromiter((SPACE * c.isspace() + ALPHA * c.isalpha() for c in chars), np.uint8, 0x110000)
    return _CLASSES


def _coverage(starts: np.ndarray, n: int, length: int) -> np.ndarray:
    """Mask over `length` words: True where a word lies inside an n-gram starting at one of `starts`."""
    # +1 where a covering n-gram opens, -1 where it closes; a positive running sum means covered.
    delta = np.bincount(starts, minlength=length + 1) - np.bincount(starts + n, minlength=length + 1)
    return np.cumsum(delta[:length]) > 0


def _word_ids(text: str) -> tuple[np.ndarray, int]:
    """Dense id per whitespace-separated word, and the number of distinct words.

    Arrow splits and hashes in C++, twice as fast as str.split() + pandas.factorize;
    its whitespace is exactly str.isspace() (checked over all code points), so the
    words line up with DocStats._word_bounds.
    """
    words = pc.utf8_split_whitespace(pa.array([text], pa.large_string())).flatten()
    encoded = words.dictionary_encode()
    return encoded.indices.to_numpy().astype(np.int64), len(encoded.dictionary)


class DocStats:
    """Per-document counts shared by the filters; each is computed on first use."""

    def __init__(self, text: str):
        self.text = text
        self._ngrams: dict[int, tuple[np.ndarray, int]] = {}  # n -> (id per position, number of distinct ids)

    @cached_property
    def _classes(self) -> np.ndarray:
        codepoints = np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), np.uint32)
        return _char_classes()[codepoints]

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

    def ngram_ids(self, n: int) -> np.ndarray:
        """Dense id per word n-gram (position i covers words i..i+n-1); equal ids iff equal n-grams.

        Exact, no hashing: the ids of two shorter n-grams are packed into one int64
        and factorized again, doubling the width (1, 2, 4, 5 for n=5). Ids are
        below the number of words, so the packed value cannot overflow.
        """
        if not self._ngrams:
            self._ngrams[1] = _word_ids(self.text)
        width = max(w for w in self._ngrams if w <= n)
        while width < n:
            step = max(w for w in self._ngrams if w <= n - width)
            (head, _), (tail, tail_size) = self._ngrams[width], self._ngrams[step]
            packed = head[:len(tail) - width] * tail_size + tail[width:]
            ids, uniques = pd.factorize(packed)
            width += step
            self._ngrams[width] = ids, len(uniques)
        return self._ngrams[n][0]


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
    if s.num_words == 0:
        return symbols == 0
    return symbols / s.num_words <= p.max_symbol_word_ratio


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


def top_ngram_fraction(s: DocStats, n: int = N_TOP) -> float:
    """Characters covered by the most frequent word n-gram / all word characters."""
    if s.num_words < n or s.word_chars == 0:
        return 0.0
    ids = s.ngram_ids(n)
    counts = np.bincount(ids)
    top = int(np.argmax(counts))  # ties: the n-gram seen first in the document
    if counts[top] < 2:
        return 0.0
    covered = _coverage(np.flatnonzero(ids == top), n, s.num_words)
    return float(s.word_lengths[covered].sum()) / s.word_chars


def duplicate_ngram_fraction(s: DocStats, n: int = N_DUP) -> float:
    """Characters covered by word n-grams that occur more than once / all word characters."""
    if s.num_words < n or s.word_chars == 0:
        return 0.0
    ids = s.ngram_ids(n)
    repeated = np.bincount(ids)[ids] > 1
    if not repeated.any():
        return 0.0
    covered = _coverage(np.flatnonzero(repeated), n, s.num_words)
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


def quality_failure(text: str, params: QualityParams) -> str | None:
    """Name of the first enabled filter (in QUALITY_FILTERS order) the document fails, or None if it passes."""
    enabled = set(params.filters)
    stats = DocStats(text)
    for name, passes in FILTERS.items():
        if name in enabled and not passes(stats, params):
            return name
    return None
