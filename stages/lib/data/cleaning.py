"""The per-document half of the clean stage: a pure function from a document to a result.

`DocumentCleaner.clean_batch` normalizes, filters and scrubs documents and
computes the hashes the dedupe steps need. It holds no global state, so the
clean stage runs it in worker processes (or, unchanged, under an executor
such as datatrove or Ray Data); the decisions that need the whole corpus
(exact and near dedupe, boilerplate) stay in the stage, in document order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xxhash

from stages.lib.data import textnorm
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import MinHasher, Sketch
from stages.lib.data.pii.scrub import PiiScrubber
from stages.lib.data.quality import quality_check
from stages.lib.params import CleanParams

EXCERPT_CHARS = 300


@dataclass
class DocResult:
    id: str
    source: str
    bytes_in: int
    text: str = ""  # cleaned text when kept; an excerpt when removed
    reason: str | None = None  # why the document was removed, None when kept
    pii: dict[str, int] = field(default_factory=dict)
    content_hash: int = 0  # exact-duplicate key of the cleaned text
    signature: Sketch | None = None  # MinHash sketch for near dedupe
    unit_hashes: np.ndarray | None = None  # distinct long lines/paragraphs, for boilerplate counting

    def mark_exact_duplicate(self, kept: str) -> None:
        """Removed as an exact copy (after normalization) of the kept document `kept`."""
        self.reason = "exact_duplicate"
        self.text = f"(same text as {kept}) {self.text[:EXCERPT_CHARS]}"

    def mark_near_duplicate(self, similar: str, jaccard: float, containment: float) -> None:
        """Removed as a near duplicate of the kept document `similar`; the report shows why."""
        self.reason = "near_duplicate"
        self.text = f"(similar to {similar}: Jaccard ~{jaccard:.2f}, containment ~{containment:.2f}) " \
                    f"{self.text[:EXCERPT_CHARS]}"


class DocumentCleaner:
    def __init__(self, params: CleanParams):
        self.params = params
        self.scrubber = PiiScrubber(params.pii.kinds)
        near = params.near_dedupe
        self.minhasher = MinHasher(near.num_perm, near.ngram, near.seed) if near.enabled else None
        lines = params.line_dedupe
        self.line_units = LineFrequency(lines.unit, lines.min_chars) if lines.enabled else None

    def clean_batch(self, batch: list[tuple[str, str, str]]) -> list[DocResult]:
        return [self.clean(doc_id, source, text) for doc_id, source, text in batch]

    def normalize(self, text: str) -> str:
        p = self.params
        if p.fix_mojibake:
            text = textnorm.fix_mojibake(text)
        text = textnorm.normalize_unicode(text, p.normalize)
        if p.strip_control:
            text = textnorm.strip_invisible(text)
        if p.tidy_whitespace:
            text = textnorm.tidy_whitespace(text)
        return text

    def rejection(self, text: str) -> tuple[str, str] | None:
        """Why a normalized document is dropped before dedupe, as (reason, measured value against the
        threshold's params key), or None."""
        p = self.params
        if len(text) < p.min_chars:
            return "too_short", f"{len(text)} characters < clean.min_chars {p.min_chars}"
        if p.max_chars and len(text) > p.max_chars:
            return "too_long", f"{len(text)} characters > clean.max_chars {p.max_chars}"
        failed = quality_check(text, p.quality)
        return (f"quality_{failed[0]}", failed[1]) if failed else None

    def clean(self, doc_id: str, source: str, text: str) -> DocResult:
        result = DocResult(doc_id, source, bytes_in=len(text.encode("utf-8")))
        text = self.normalize(text)
        rejected = self.rejection(text)
        if rejected is None:
            text, result.pii = self.scrubber.scrub(text)
            if result.pii and self.params.pii.action == "drop":
                found = ", ".join(f"{n} {kind}" for kind, n in sorted(result.pii.items()))
                rejected = "pii", f"{found}; clean.pii.action drop"
        if rejected is not None:
            # The removed document's text is only an excerpt for the report, led by why it was removed.
            result.reason = rejected[0]
            result.text = f"({rejected[1]}) {text[:EXCERPT_CHARS]}"
            return result
        result.text = text
        result.content_hash = xxhash.xxh3_64_intdigest(text.encode("utf-8"))
        if self.minhasher is not None:
            result.signature = self.minhasher.sketch(text)
        if self.line_units is not None:
            result.unit_hashes = self.line_units.unit_hashes(text)
        return result
