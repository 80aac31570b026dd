"""Near-duplicate documents with MinHash LSH (Broder 1997; Leskovec et al., Mining of Massive Datasets, ch. 3).

Two steps, split so the clean stage stays fast and deterministic:

- `MinHasher.signature(text)` (picklable, runs in worker processes): the
  document's shingles are word n-grams of the lowercased text with punctuation
  removed ("Hello, World!" and "hello world" shingle alike); a document with
  fewer than n words is one shingle of all its words. Each shingle becomes a
  32-bit hash, and slot i of the signature is the minimum over the shingles
  of the i-th multiply-add-shift hash h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32,
  a 2-independent family for 32-bit keys (Dietzfelbinger 1996). Equal slots
  estimate the Jaccard similarity of two shingle sets.
- `NearDuplicateIndex.add_or_match(doc_id, signature)` (main process, in
  document order): LSH with b bands of r rows finds candidates, which are
  verified on the full signature, so the first copy is kept and later ones dropped.

The index is hand-written because datasketch.MinHashLSH returns unverified
candidates and keeps bytes keys and a set per bucket: 3.7 KB and 109 us per
document without any signature, against 1.6 KB and 48 us here with them
(100k random signatures, tracemalloc). `optimal_bands` reproduces datasketch's
_optimal_param choice of bands and rows.

Memory per kept document: 4 * num_perm bytes of signature in one growing
uint32 array (512 B at 128, up to 2x while the array doubles), one dict entry
per band with an int key (~90 B each, 9 bands at the defaults) and the id
string: ~1.4-1.6 KB per kept document at the defaults.
"""
from __future__ import annotations

import numpy as np
import xxhash

from stages.lib.data.quality import ALNUM, SPACE, char_classes

_CHUNK = 8192  # shingles hashed at once (measured: long rows make the min-reduction efficient)
_WORD_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier chaining word hashes into n-gram hashes


def shingle_words(text: str) -> list[bytes]:
    """Lowercased words with every character that is neither a letter/digit nor whitespace removed."""
    codepoints = np.frombuffer(text.lower().encode("utf-32-le", "surrogatepass"), np.uint32)
    classes = char_classes()[codepoints]
    # Any whitespace becomes a plain space; punctuation and symbols vanish, so "don't" -> "dont".
    kept = np.where(classes & SPACE, np.uint32(ord(" ")), codepoints)[(classes & (SPACE | ALNUM)) != 0]
    return kept.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass").split()


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, in place: spreads every input bit over the high bits we keep."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class MinHasher:
    """MinHash signatures of word n-gram shingles; deterministic given (num_perm, ngram, seed)."""

    def __init__(self, num_perm: int, ngram: int, seed: int):
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**64, num_perm, dtype=np.uint64) | np.uint64(1)  # odd
        self.b = rng.integers(0, 2**64, num_perm, dtype=np.uint64)

    def shingles(self, text: str) -> np.ndarray:
        """32-bit hash (as uint64) of every word n-gram, in document order, repeats included."""
        words = shingle_words(text)
        if not words:
            return np.zeros(0, np.uint64)
        hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, words), np.uint64, len(words))
        n = min(self.ngram, len(hashes))
        count = len(hashes) - n + 1
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
            grams = hashes[:count].copy()
            for k in range(1, n):
                grams *= _WORD_MIX
                grams += hashes[k:k + count]
            return _mix64(grams) >> np.uint64(32)

    def signature(self, text: str) -> np.ndarray | None:
        """uint32 array [num_perm]: per hash function, the minimum over the document's shingles.

        None for a text without words (emoji, ASCII art): with no shingles every such text would get the
        same signature and look like a duplicate of the first.
        """
        shingles = self.shingles(text)
        if len(shingles) == 0:
            return None
        lowest = np.full(self.num_perm, np.iinfo(np.uint64).max, np.uint64)
        block = np.empty((self.num_perm, min(_CHUNK, len(shingles))), np.uint64)
        a, b = self.a[:, None], self.b[:, None]
        with np.errstate(over="ignore"):
            for i in range(0, len(shingles), _CHUNK):
                chunk = shingles[i:i + _CHUNK]
                values = block[:, :len(chunk)]
                np.multiply(a, chunk[None, :], out=values)
                values += b
                np.minimum(lowest, values.min(axis=1), out=lowest)
        # The minimum of the full 64-bit values has the minimum high half, so shift once at the end.
        return (lowest >> np.uint64(32)).astype(np.uint32)


def _integral(f, lo: float, hi: float) -> np.ndarray:
    """Trapezoid integral over [lo, hi] of f(s), vectorized over whatever shape f returns per s."""
    s = np.linspace(lo, hi, 1001)
    return np.trapezoid(f(s[:, None]), s, axis=0)


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising weighted false positive + negative area.

    Same objective as datasketch's _optimal_param: a pair of similarity s
    becomes a candidate with probability 1 - (1 - s^r)^b; false positives
    integrate that below the threshold, false negatives its complement above.
    """
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b, r = pairs[:, 0].astype(float), pairs[:, 1].astype(float)
    candidate = lambda s: 1.0 - (1.0 - s**r) ** b  # noqa: E731
    false_pos = _integral(candidate, 0.0, threshold)
    false_neg = _integral(lambda s: 1.0 - candidate(s), threshold, 1.0)
    best = int(np.argmin(fp_weight * false_pos + fn_weight * false_neg))  # ties: fewest bands
    return int(pairs[best, 0]), int(pairs[best, 1])


class NearDuplicateIndex:
    """Keeps the signatures of the documents kept so far; answers "is this a near-duplicate?"."""

    def __init__(self, num_perm: int, threshold: float):
        self.num_perm, self.threshold = num_perm, threshold
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self._signatures = np.empty((1024, num_perm), np.uint32)  # rows [0, len(ids)) are in use
        self._ids: list[str] = []
        # One dict per band: band hash -> index of the document, or a list of them when several share it.
        self._buckets: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]

    def __len__(self) -> int:
        return len(self._ids)

    def _band_keys(self, signature: np.ndarray) -> list[int]:
        bands = signature[:self.bands * self.rows].reshape(self.bands, self.rows)
        return [xxhash.xxh3_64_intdigest(band.tobytes()) for band in bands]

    def _candidates(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for bucket, key in zip(self._buckets, keys):
            hit = bucket.get(key)
            if isinstance(hit, list):
                found.update(hit)
            elif hit is not None:
                found.add(hit)
        return found

    def add_or_match(self, doc_id: str, signature: np.ndarray) -> tuple[str, float] | None:
        """If a previously added doc is a near-duplicate (candidate from LSH buckets, verified by
        estimated Jaccard = fraction of equal signature slots >= threshold), return (its id,
        similarity) and do NOT add; else add this doc and return None."""
        signature = np.asarray(signature, np.uint32)
        if signature.shape != (self.num_perm,):
            raise ValueError(f"signature shape {signature.shape} != ({self.num_perm},)")
        keys = self._band_keys(signature)
        candidates = sorted(self._candidates(keys))
        if candidates:
            similarity = (self._signatures[candidates] == signature).mean(axis=1)
            best = int(np.argmax(similarity))  # ties: the earliest document
            if similarity[best] >= self.threshold:
                return self._ids[candidates[best]], float(similarity[best])
        self._add(doc_id, signature, keys)
        return None

    def _add(self, doc_id: str, signature: np.ndarray, keys: list[int]) -> None:
        index = len(self._ids)
        if index == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.empty_like(self._signatures)])
        self._signatures[index] = signature
        self._ids.append(doc_id)
        for bucket, key in zip(self._buckets, keys):
            hit = bucket.setdefault(key, index)  # a lone int is far smaller than a one-item list
            if isinstance(hit, list):
                hit.append(index)
            elif hit != index:
                bucket[key] = [hit, index]
