"""clean on this machine: per-document work in a process pool, duplicate decisions in this process.

`DocumentCleaner.clean_batch` runs over batches of about BATCH_BYTES of text
in worker processes (`ordered_map`, results in input order); the results
then pass through `deduplicate` here, in document order, so the first copy
of a text is the one kept whatever the worker count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from stages.lib.data.cleaning import DocResult, DocumentCleaner
from stages.lib.data.documents import iter_batches
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import NearDuplicateIndex
from stages.lib.data.parallel import ordered_map, resolve_workers
from stages.lib.params import CleanParams

BATCH_BYTES = 2 << 20  # text per task sent to a worker


def read_batches(in_dir: Path) -> Iterator[list[tuple[str, str, str]]]:
    """Documents as (id, source, text), grouped into tasks of about BATCH_BYTES of text."""
    batch, size = [], 0
    for record_batch in iter_batches(in_dir):
        cols = record_batch.to_pydict()
        for doc in zip(cols["id"], cols["source"], cols["text"]):
            batch.append(doc)
            size += len(doc[2])
            if size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def deduplicate(results: Iterator[DocResult], params: CleanParams) -> Iterator[DocResult]:
    """Mark exact and near duplicates in document order, so the first copy is kept."""
    seen_hashes: dict[int, str] = {}  # content hash -> id of the copy kept
    near = params.near_dedupe
    near_index = NearDuplicateIndex.from_params(near) if near.enabled else None
    for result in results:
        if result.reason is None and params.exact_dedupe:
            if result.content_hash in seen_hashes:
                result.mark_exact_duplicate(seen_hashes[result.content_hash])
            else:
                seen_hashes[result.content_hash] = result.id
        if result.reason is None and near_index is not None and result.signature is not None:
            match = near_index.add_or_match(result.id, result.signature)
            if match is not None:
                result.mark_near_duplicate(*match)
        yield result


def cleaned(in_dir: Path, params: CleanParams, cleaner: DocumentCleaner,
            line_counts: LineFrequency | None) -> Iterator[DocResult]:
    """Every document's DocResult in document order, duplicates marked.

    line_counts is left to the caller: it counts each kept document's unit hashes as it writes them.
    """
    batches = ordered_map(cleaner.clean_batch, read_batches(in_dir), resolve_workers(params.workers))
    yield from deduplicate((result for batch in batches for result in batch), params)
