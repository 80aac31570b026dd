"""Near-duplicate documents: one-permutation MinHash sketches, LSH candidates, Jaccard or containment.

Why not the usual defaults (word 5-grams, Jaccard >= 0.8 on 128 MinHash
slots): one changed word breaks five shingles, so a copy with 10% of its words
replaced keeps a 5-gram Jaccard of ~0.4, and a copy cut to its first 70% has a
Jaccard of 0.7; both passed as distinct. Distinct speeches of one author, on
the other hand, reuse whole passages (5-gram Jaccard up to ~0.3). The choices
below separate the two on the planted set of bench/dedupe.py (figures there):

- Shingles are word 3-grams of the lowercased text without punctuation
  ("Hello, World!" and "hello world" shingle alike). Scattered edits break
  three shingles each instead of five (10% of words replaced: Jaccard 0.57
  instead of 0.41), while passages shared by distinct documents score the
  same at any n. 3-grams are common enough across unrelated text to raise
  the background Jaccard (~0.005 between passages of one play), which only
  costs LSH candidates, all verified.
- The sketch is one-permutation hashing (Li, Owen, Zhang 2012) with optimal
  densification (Shrivastava 2017): each shingle is hashed once to 64 bits,
  the top bits pick one of `num_perm` bins and a bin keeps its smallest
  value (one `np.minimum.at`); an empty bin (short documents) copies a
  non-empty one along a fixed probe sequence. Equal bins estimate the
  Jaccard similarity as k-permutation MinHash does, without num_perm
  multiply-adds per shingle, so 256 bins cost less than the old 128
  permutations: 1.7-2x the old signature MB/s (bench/dedupe.py prints both;
  word splitting and hashing are now most of the cost). A sort of 32-bit
  shingle hashes (~7 ms per MB) counts the distinct shingles, which turns
  the Jaccard estimate into a containment estimate
  |A & B| / min(|A|, |B|) = J (|A| + |B|) / ((1 + J) min(|A|, |B|)).
  A bin keeps 16 bits: a false match of two different shingles adds 2^-16.
- A document is a near duplicate of a kept one when their estimated Jaccard is
  at least `candidate_threshold` and either the Jaccard is at least
  `threshold` (edited copies, shuffled paragraphs) or the containment is at
  least `containment` (a truncated copy, a copy with text appended). The
  Jaccard floor keeps the containment estimate away from tiny, noisy Jaccard
  values between documents of very different length.
- LSH bands of 2 bins (one 32-bit value), as many as give a pair at
  `candidate_threshold` a 99% chance of sharing one (`lsh_bands`: 49 at
  0.3). Each band key maps to the first kept document that had it
  (`BandTable`, ~10 bytes a key instead of ~90 in a dict).

Memory per kept document at the defaults: 512 B of signature, 4 B of shingle
count, 49 band keys (~10 B each, plus the recent-keys dict spread over them),
the id string and list slot (~100 B): ~1.4 KB measured (bench/dedupe.py,
tracemalloc, 100k documents), against ~1.5 KB for the previous index of
128 uint32 slots and 9 dict-held bands.

`MinHasher` runs in the worker processes and is deterministic given its
params; `NearDuplicateIndex.add_or_match` runs in the main process in document
order, so the first copy is kept and the result does not depend on workers.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import xxhash

from stages.lib.data.quality import ALNUM, SPACE, char_classes

_WORD_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier chaining word hashes into n-gram hashes
_VALUE_BITS = 16  # bits kept per bin
LSH_RECALL = 0.99  # chance that a pair at candidate_threshold shares a band


def shingle_words(text: str) -> list[bytes]:
    """Lowercased words with every character that is neither a letter/digit nor whitespace removed."""
    codepoints = np.frombuffer(text.lower().encode("utf-32-le", "surrogatepass"), np.uint32)
    classes = char_classes()[codepoints]
    # Any whitespace becomes a plain space; punctuation and symbols vanish, so "don't" -> "dont".
    kept = np.where(classes & SPACE, np.uint32(ord(" ")), codepoints)[(classes & (SPACE | ALNUM)) != 0]
    return kept.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass").split()


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, in place: a bijection that spreads every input bit over all output bits."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class Sketch(NamedTuple):
    signature: np.ndarray  # uint16 [num_perm]: per bin, the top value bits of its smallest shingle hash
    shingles: int  # distinct shingles in the document


@functools.lru_cache(maxsize=4)
def _probe_order(num_perm: int, seed: int) -> np.ndarray:
    """Row j: the order in which an empty bin j looks for a non-empty bin to copy (a random permutation)."""
    rng = np.random.default_rng([seed, num_perm])
    return np.argsort(rng.random((num_perm, num_perm)), axis=1).astype(np.uint16)


class MinHasher:
    """One-permutation MinHash sketches of word n-gram shingles; deterministic given (num_perm, ngram, seed)."""

    def __init__(self, num_perm: int, ngram: int, seed: int):
        if num_perm & (num_perm - 1):
            raise ValueError(f"num_perm={num_perm} must be a power of two")
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        self.bin_bits = num_perm.bit_length() - 1
        self.salt = np.uint64(xxhash.xxh3_64_intdigest(seed.to_bytes(8, "little")))

    def shingles(self, text: str) -> np.ndarray:
        """64-bit hash of every word n-gram, in document order, repeats included."""
        words = shingle_words(text)
        if not words:
            return np.zeros(0, np.uint64)
        hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, words), np.uint64, len(words))
        n = min(self.ngram, len(hashes))  # a document with fewer than n words is one shingle of all of them
        count = len(hashes) - n + 1
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
            grams = hashes[:count].copy()
            for k in range(1, n):
                grams *= _WORD_MIX
                grams += hashes[k:k + count]
            grams ^= self.salt  # the seed picks the permutation
            return _mix64(grams)

    def sketch(self, text: str) -> Sketch | None:
        """The document's sketch, or None for a text without words (emoji, ASCII art): with no
        shingles every such text would get the same sketch and look like a duplicate of the first."""
        hashes = self.shingles(text)
        if len(hashes) == 0:
            return None
        # Within a bin the top bits are equal, so the smallest hash has the smallest value bits.
        lowest = np.full(self.num_perm, np.iinfo(np.uint64).max, np.uint64)
        np.minimum.at(lowest, (hashes >> np.uint64(64 - self.bin_bits)).astype(np.intp), hashes)
        signature = (lowest >> np.uint64(64 - self.bin_bits - _VALUE_BITS)).astype(np.uint16)  # drops the bin bits
        filled = lowest != np.iinfo(np.uint64).max
        if not filled.all():
            empty = np.flatnonzero(~filled)
            probes = _probe_order(self.num_perm, self.seed)[empty]
            source = probes[np.arange(len(empty)), np.argmax(filled[probes], axis=1)]
            signature[empty] = signature[source]
        # Distinct shingles, counted on 32-bit hashes (a sort costs ~7 ms per MB; collisions are negligible).
        top = np.sort((hashes >> np.uint64(32)).astype(np.uint32))
        return Sketch(signature, 1 + int(np.count_nonzero(top[1:] != top[:-1])))

    def signature(self, text: str) -> np.ndarray | None:
        sketch = self.sketch(text)
        return None if sketch is None else sketch.signature


def lsh_bands(candidate_threshold: float, num_perm: int, rows: int = 2) -> int:
    """Fewest bands of `rows` bins that give a pair with Jaccard `candidate_threshold` a
    LSH_RECALL chance of sharing a band (a band matches with probability J^rows)."""
    p = candidate_threshold ** rows
    bands = math.ceil(math.log(1 - LSH_RECALL) / math.log(1 - p)) if p < 1 else 1
    return min(bands, num_perm // rows)


def estimate(a: Sketch, signatures: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Jaccard, containment of the smaller in the larger) of sketch a against each row."""
    jaccard = (signatures == a.signature).mean(axis=1)
    shared = jaccard * (a.shingles + sizes) / (1.0 + jaccard)
    return jaccard, np.minimum(shared / np.minimum(a.shingles, sizes), 1.0)


class BandTable:
    """32-bit band key -> the first document stored under it, in two parts:

    - a sorted numpy array of (key, document) pairs, 8 bytes each, with a
      directory of where each run of keys sharing their top bits starts (about
      4 keys a run, 2 bytes a key): a lookup reads one run per key with a few
      vectorized gathers. A binary search (np.searchsorted) would miss the CPU
      cache ~20 times per key: 100 us per document at 100k documents.
    - a dict of the latest keys, merged into the array when it holds 1/16 of
      the array's entries (at least 2^16): ~100 bytes per dict entry spread
      over 16 array entries, and each merge's O(n) copy paid once per 1/16
      growth. A dict alone would cost ~90 bytes per key.
    """

    RUN = np.arange(16)  # keys read per run; a longer run (Poisson(4) makes that ~1e-5) is searched alone

    def __init__(self):
        self.keys = np.zeros(0, np.uint32)  # sorted
        self.values = np.zeros(0, np.uint32)
        self.shift = np.uint32(32)
        self.starts = np.zeros(2, np.int64)  # run r is keys[starts[r]:starts[r + 1]]
        self.recent: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.keys) + len(self.recent)

    def nbytes(self) -> int:
        arrays = self.keys.nbytes + self.values.nbytes + self.starts.nbytes
        return arrays + len(self.recent) * 100  # ~100 B per dict entry with its key object

    def _in_array(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key in the sorted array, -1 where absent."""
        run = (keys >> self.shift).astype(np.intp) if self.shift < 32 else np.zeros(len(keys), np.intp)
        lo, hi = self.starts[run], self.starts[run + 1]
        where = lo[:, None] + self.RUN
        inside = where < hi[:, None]
        if not len(self.keys):
            return np.full(len(keys), -1, np.intp)
        hit = (self.keys[np.minimum(where, len(self.keys) - 1)] == keys[:, None]) & inside
        position = np.where(hit.any(axis=1), where[np.arange(len(keys)), hit.argmax(axis=1)], -1)
        for i in np.flatnonzero(hi - lo > len(self.RUN)):  # rare long runs
            j = lo[i] + np.searchsorted(self.keys[lo[i]:hi[i]], keys[i])
            position[i] = j if j < hi[i] and self.keys[j] == keys[i] else -1
        return position

    def get(self, keys: np.ndarray) -> tuple[list[int], np.ndarray]:
        """(documents stored under any of the keys, the keys not in the array) for `put`."""
        position = self._in_array(keys)
        found = position >= 0
        rest, recent = keys[~found], self.recent
        return self.values[position[found]].tolist() + [recent[k] for k in rest.tolist() if k in recent], rest

    def put(self, rest: np.ndarray, value: int) -> None:
        """Store `value` under each key of `rest` (from `get`) not stored yet: a bucket keeps its first document."""
        for key in rest.tolist():
            self.recent.setdefault(key, value)
        if len(self.recent) >= max(1 << 16, len(self.keys) // 16):
            self._merge()

    def _merge(self) -> None:
        new_keys = np.fromiter(self.recent.keys(), np.uint32, len(self.recent))
        new_values = np.fromiter(self.recent.values(), np.uint32, len(self.recent))
        order = np.argsort(new_keys)
        at = np.searchsorted(self.keys, new_keys[order])
        self.keys = np.insert(self.keys, at, new_keys[order])
        self.values = np.insert(self.values, at, new_values[order])
        self.recent = {}
        bits = max(int(len(self.keys) // 4).bit_length() - 1, 0)  # about 4 keys a run
        self.shift = np.uint32(32 - bits)
        firsts = np.arange(2**bits, dtype=np.uint64) << np.uint64(32 - bits)
        self.starts = np.append(np.searchsorted(self.keys, firsts), len(self.keys)).astype(np.int64)


class NearDuplicateIndex:
    """The sketches of the documents kept so far; answers "is this a near duplicate of one of them?"."""

    def __init__(self, num_perm: int, threshold: float, containment: float = 1.0,
                 candidate_threshold: float | None = None):
        self.num_perm, self.threshold, self.containment = num_perm, threshold, containment
        self.candidate_threshold = min(threshold, containment) if candidate_threshold is None else candidate_threshold
        self.rows = 2  # two 16-bit bins make one 32-bit band value
        self.bands = lsh_bands(self.candidate_threshold, num_perm, self.rows)
        # Mixing the band number into its key lets one table hold every band.
        self._band_salt = np.arange(self.bands, dtype=np.uint64) * _WORD_MIX
        self._signatures = np.empty((1024, num_perm), np.uint16)  # rows [0, len(ids)) are in use
        self._sizes = np.empty(1024, np.uint32)
        self._ids: list[str] = []
        self._table = BandTable()

    @classmethod
    def from_params(cls, params) -> "NearDuplicateIndex":
        """From a NearDedupeParams."""
        return cls(params.num_perm, params.threshold, params.containment, params.candidate_threshold)

    def __len__(self) -> int:
        return len(self._ids)

    def nbytes(self) -> int:
        """Bytes held by the arrays (the id strings come on top)."""
        return self._signatures.nbytes + self._sizes.nbytes + self._table.nbytes()

    def band_keys(self, signature: np.ndarray) -> np.ndarray:
        """The LSH band keys of a signature [num_perm] or of signatures [n, num_perm] (uint32 [bands] or
        [n, bands]): pure, so the Ray engine groups documents by them."""
        bands = np.ascontiguousarray(signature[..., :self.bands * self.rows]).view(np.uint32).astype(np.uint64)
        with np.errstate(over="ignore"):
            keys = (_mix64(bands + self._band_salt) >> np.uint64(32)).astype(np.uint32)
        return keys

    def add_or_match(self, doc_id: str, sketch: Sketch) -> tuple[str, float, float] | None:
        """If a kept document is a near duplicate (an LSH candidate whose estimated Jaccard reaches
        candidate_threshold, and then threshold or, as containment, `containment`), return (its id,
        Jaccard, containment) and do NOT add; else add this document and return None."""
        signature = np.asarray(sketch.signature, np.uint16)
        if signature.shape != (self.num_perm,):
            raise ValueError(f"signature shape {signature.shape} != ({self.num_perm},)")
        sketch = Sketch(signature, max(int(sketch.shingles), 1))
        keys = self.band_keys(signature)
        found, rest = self._table.get(keys)
        candidates = np.unique(np.array(found, np.intp))  # sorted: ties go to the earliest document
        if candidates.size:
            jaccard, containment = estimate(sketch, self._signatures[candidates], self._sizes[candidates])
            duplicate = (jaccard >= self.candidate_threshold) & (
                (jaccard >= self.threshold) | (containment >= self.containment))
            if duplicate.any():
                best = int(np.argmax(np.where(duplicate, jaccard + containment, -1.0)))
                return self._ids[candidates[best]], float(jaccard[best]), float(containment[best])
        self._add(doc_id, sketch, rest)
        return None

    def _add(self, doc_id: str, sketch: Sketch, rest: np.ndarray) -> None:
        index = len(self._ids)
        if index == len(self._sizes):
            self._signatures = np.concatenate([self._signatures, np.empty_like(self._signatures)])
            self._sizes = np.concatenate([self._sizes, np.empty_like(self._sizes)])
        self._signatures[index], self._sizes[index] = sketch.signature, sketch.shingles
        self._ids.append(doc_id)
        self._table.put(rest, index)
