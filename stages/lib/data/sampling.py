"""Deterministic sampling of text for tokenizer training.

Documents are cut into chunks at line boundaries and a chunk is kept when a
seeded hash of (document id, chunk index) falls under the keep fraction: the
sample is spread over the whole corpus, identical from run to run, and stable
for documents that did not change when the corpus grows.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from stages.lib.data.split import unit_hash

CHUNK_CHARS = 1 << 16


def chunks(text: str, size: int = CHUNK_CHARS) -> Iterator[str]:
    """Pieces of about `size` characters, cut after a newline where there is one."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            newline = text.rfind("\n", start, end)
            end = newline + 1 if newline > start else end
        yield text[start:end]
        start = end


def sample_chunks(docs: Iterable[tuple[str, str]], keep_fraction: float, seed: int) -> Iterator[str]:
    """Chunks of (id, text) documents, each kept with probability keep_fraction (deterministically)."""
    for doc_id, text in docs:
        for i, chunk in enumerate(chunks(text)):
            if keep_fraction >= 1.0 or unit_hash(seed, f"{doc_id}#{i}") < keep_fraction:
                yield chunk
