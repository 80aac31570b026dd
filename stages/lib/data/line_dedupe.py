"""Boilerplate removal: lines (or paragraphs) repeated across many documents are cut.

License headers, navigation bars and "Click here to subscribe" footers recur
verbatim across documents, while real sentences rarely do. In the spirit of
C4's line-level cleaning and the cross-document line deduplication of
Penedo et al. 2023 (RefinedWeb) and Gopher, two passes over the kept documents:

1. `add(text)` for every document: each distinct unit (a line, or a
   blank-line-separated paragraph) of at least `min_chars` characters after
   `strip()` is recorded once per document as a 64-bit xxh3 hash.
2. `finalize(min_docs)`: units found in at least `min_docs` documents are boilerplate.
3. `remove_boilerplate(text)`: drops those units; units shorter than
   `min_chars` are never dropped, so common short lines ("Exeunt.") survive.

The Ray engine counts the units on the cluster instead and hands the result to
`set_boilerplate`; each block's pass 2 then asks `holds` which documents to cut.

Memory: 8 bytes per distinct unit per document in pass 1, held in flat uint64
chunks (no Python object per line), plus 8 bytes per document for where its
hashes end; finalize sorts them (about 2x that, once) and keeps only the sorted
boilerplate hashes, 8 bytes each, and one flag per document saying whether it
holds any.
"""
from __future__ import annotations

import array
import re
from typing import Literal

import numpy as np
import xxhash

_CHUNK = 1 << 20  # hashes per storage chunk (8 MB)
# A paragraph break: a newline, then one or more lines holding only whitespace.
_PARAGRAPH_BREAK = re.compile(r"(\n(?:[^\S\n]*\n)+)")


def _split(text: str, unit: str) -> tuple[list[str], list[str]]:
    """Units and the separator after each ("" after the last): text == "".join(u + s for u, s in zip(...))."""
    if unit == "line":
        units = text.split("\n")
        return units, ["\n"] * (len(units) - 1) + [""]
    parts = _PARAGRAPH_BREAK.split(text)
    return parts[0::2], parts[1::2] + [""]


def _hash(unit: str) -> int:
    return xxhash.xxh3_64_intdigest(unit.encode("utf-8", "surrogatepass"))


def _member(table: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Mask: which hashes are in the sorted table (binary search)."""
    if len(table) == 0:
        return np.zeros(len(hashes), bool)
    found = np.minimum(np.searchsorted(table, hashes), len(table) - 1)
    return table[found] == hashes


class LineFrequency:
    """Counts, per distinct line or paragraph, how many documents contain it; then cuts the common ones."""

    def __init__(self, unit: Literal["line", "paragraph"], min_chars: int):
        if unit not in ("line", "paragraph"):
            raise ValueError(f"unit must be 'line' or 'paragraph', got {unit!r}")
        self.unit, self.min_chars = unit, min_chars
        self._chunks: list[np.ndarray] = []  # full chunks of per-document distinct hashes
        self._current = np.empty(_CHUNK, np.uint64)
        self._filled = 0
        self._doc_ends = array.array("q")  # where each document's hashes end in the recorded stream
        self._recorded = 0
        self._boilerplate: np.ndarray | None = None  # sorted uint64, set by finalize() or set_boilerplate()
        self.boilerplate_units = 0
        self.affected: np.ndarray | None = None  # per added document: does it hold boilerplate? (finalize)

    def _split_and_hash(self, text: str) -> tuple[list[str], list[str], list[int], np.ndarray]:
        """Units, separators, the indices of units long enough to count, and those units' hashes."""
        units, seps = _split(text, self.unit)
        # The unstripped length is a cheap first test: most short lines are never stripped or hashed.
        long = [i for i, u in enumerate(units) if len(u) >= self.min_chars and len(u.strip()) >= self.min_chars]
        hashes = np.fromiter((_hash(units[i].strip()) for i in long), np.uint64, len(long))
        return units, seps, long, hashes

    def unit_hashes(self, text: str) -> np.ndarray:
        """The distinct long units of one document, hashed: pure, so workers can compute it."""
        return np.unique(self._split_and_hash(text)[3])

    def add(self, text: str) -> None:
        """Pass 1: record each distinct long unit of this document once."""
        self.add_hashes(self.unit_hashes(text))

    def set_boilerplate(self, hashes: np.ndarray) -> None:
        """The boilerplate units, counted elsewhere (the Ray engine, over every kept document): in place of
        add/finalize, so `holds` and `cut` work at once."""
        self._boilerplate = np.unique(np.asarray(hashes, np.uint64))
        self.boilerplate_units = len(self._boilerplate)

    def holds(self, hashes: np.ndarray) -> bool:
        """Does a document with these `unit_hashes` hold any boilerplate?"""
        return bool(self._is_boilerplate(np.asarray(hashes, np.uint64)).any())

    def add_hashes(self, hashes: np.ndarray) -> None:
        """Pass 1, given `unit_hashes(text)` computed elsewhere."""
        if self._boilerplate is not None:
            raise RuntimeError("add() after finalize()")
        self._recorded += len(hashes)
        self._doc_ends.append(self._recorded)
        while len(hashes):
            room = min(_CHUNK - self._filled, len(hashes))
            self._current[self._filled:self._filled + room] = hashes[:room]
            self._filled += room
            hashes = hashes[room:]
            if self._filled == _CHUNK:
                self._chunks.append(self._current)
                self._current, self._filled = np.empty(_CHUNK, np.uint64), 0

    def finalize(self, min_docs: int) -> None:
        """Units recorded by at least `min_docs` documents become boilerplate; the counts are freed."""
        recorded = np.concatenate(self._chunks + [self._current[:self._filled]])
        self._chunks, self._current, self._filled = [], np.empty(0, np.uint64), 0
        hashes, docs = np.unique(recorded, return_counts=True)
        self._boilerplate = hashes[docs >= min_docs]  # np.unique returns them sorted
        self.boilerplate_units = len(self._boilerplate)
        # Which documents hold any boilerplate: pass 2 leaves the others untouched.
        hits = np.concatenate(([0], np.cumsum(self._is_boilerplate(recorded))))
        ends = np.frombuffer(self._doc_ends, dtype=np.int64)
        starts = np.concatenate(([0], ends[:-1]))
        self.affected = hits[ends] > hits[starts]
        self._doc_ends = array.array("q")

    def _is_boilerplate(self, hashes: np.ndarray) -> np.ndarray:
        """Mask: which of these unit hashes are boilerplate."""
        return _member(self._boilerplate, hashes)

    def remove_boilerplate(self, text: str) -> tuple[str, int]:
        """Pass 2: drop units whose hash is boilerplate; return the new text and the number of units removed."""
        text, removed = self.cut(text)
        return text, len(removed)

    def cut(self, text: str) -> tuple[str, list[str]]:
        """Pass 2: drop units whose hash is boilerplate; return the new text and the units removed.

        A dropped unit takes its following separator with it (the preceding one
        if it is the last unit), so the rest of the text keeps its layout; a
        text with nothing to drop comes back unchanged, byte for byte.
        """
        if self._boilerplate is None:
            raise RuntimeError("call finalize() before remove_boilerplate()")
        units, seps, long, hashes = self._split_and_hash(text)
        drop = {i for i, boiler in zip(long, self._is_boilerplate(hashes)) if boiler}
        if not drop:
            return text, []
        out: list[str] = []
        for i, (unit, sep) in enumerate(zip(units, seps)):
            if i not in drop:
                out += [unit, sep]
        if out and len(units) - 1 in drop:
            out.pop()  # the last unit was dropped: no separator after what is now the end
        return "".join(out), [units[i] for i in sorted(drop)]
