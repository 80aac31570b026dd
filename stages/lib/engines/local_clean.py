"""clean on this machine: per-document work in a process pool, duplicate decisions in this process.

`DocumentCleaner.clean_batch` runs over batches of about BATCH_BYTES of text
in worker processes (`ordered_map`, results in input order); the results
then pass through a `Deduplicator` here, in document order, so the first copy
of a text is the one kept whatever the worker count. Batches never straddle
two input parts: each part is a block, written to its own output part.

Pass 1 writes each block's kept documents to a scratch folder while their
long lines are counted across the corpus; pass 2 cuts the boilerplate from
each block into data/interim/clean/part-<block>.parquet.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from stages.lib.data.clean_output import strip_boilerplate, write_kept
from stages.lib.data.clean_report import CleanReport
from stages.lib.data.cleaning import DocResult, DocumentCleaner
from stages.lib.data.documents import DocumentWriter, iter_tables, part_files, part_tables
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import NearDuplicateIndex
from stages.lib.data.parallel import ordered_map, resolve_workers
from stages.lib.params import CleanParams

BATCH_BYTES = 2 << 20  # text per task sent to a worker

Batch = list[tuple[str, str, str]]  # documents as (id, source, text)


def read_batches(in_dir: Path) -> Iterator[tuple[int, Batch]]:
    """(block, documents) in tasks of about BATCH_BYTES of text; block = the input part's position."""
    for block, path in enumerate(part_files(in_dir)):
        batch, size = [], 0
        for table in part_tables(path):
            cols = table.to_pydict()
            for doc in zip(cols["id"], cols["source"], cols["text"]):
                batch.append(doc)
                size += len(doc[2])
                if size >= BATCH_BYTES:
                    yield block, batch
                    batch, size = [], 0
        if batch:
            yield block, batch


def _clean_batch(cleaner: DocumentCleaner, task: tuple[int, Batch]) -> tuple[int, list[DocResult]]:
    block, batch = task
    return block, cleaner.clean_batch(batch)


class Deduplicator:
    """Marks exact and near duplicates in document order, so the first copy is kept."""

    def __init__(self, params: CleanParams):
        self.exact = params.exact_dedupe
        self.seen_hashes: dict[int, str] = {}  # content hash -> id of the copy kept
        near = params.near_dedupe
        self.near_index = NearDuplicateIndex.from_params(near) if near.enabled else None

    def mark(self, result: DocResult) -> DocResult:
        if result.reason is None and self.exact:
            if result.content_hash in self.seen_hashes:
                result.mark_exact_duplicate(self.seen_hashes[result.content_hash])
            else:
                self.seen_hashes[result.content_hash] = result.id
        if result.reason is None and self.near_index is not None and result.signature is not None:
            match = self.near_index.add_or_match(result.id, result.signature)
            if match is not None:
                result.mark_near_duplicate(*match)
        return result


def clean(in_dir: Path, out_dir: Path, scratch: Path, params: CleanParams,
          cleaner: DocumentCleaner) -> CleanReport:
    """Clean every block of in_dir into out_dir/part-<block>.parquet; the report of the whole stage."""
    report = CleanReport(params.report_examples)
    lines = params.line_dedupe
    line_counts = LineFrequency(lines.unit, lines.min_chars) if lines.enabled else None
    dedupe = Deduplicator(params)
    kept: dict[int, DocumentWriter] = {}  # block -> the writer of its kept documents, in block order

    # Pass 1: every document cleaned, duplicates marked in document order, the kept ones written per block.
    batches = ordered_map(functools.partial(_clean_batch, cleaner), read_batches(in_dir),
                          resolve_workers(params.workers))
    with tqdm(desc="clean", unit="doc") as progress:
        for block, results in batches:
            if block not in kept:
                if kept:
                    kept[next(reversed(kept))].close()  # the previous block is done
                kept[block] = (DocumentWriter(scratch / f"{block:05d}", block=block, compression="none")
                               if line_counts is not None else DocumentWriter(out_dir, block=block))
            write_kept((dedupe.mark(r) for r in results), report, kept[block], line_counts)
            progress.update(len(results))
    for writer in kept.values():
        writer.close()  # (closing twice is harmless)
    if line_counts is None:
        report.docs_out = sum(w.documents for w in kept.values())
        report.bytes_out = sum(w.bytes for w in kept.values())
        return report

    # Pass 2: cut boilerplate from each block's kept documents.
    line_counts.finalize(lines.min_docs)
    first = 0
    for block, pass1 in kept.items():
        block_report = CleanReport(params.report_examples)
        with DocumentWriter(out_dir, block=block) as out:
            affected = line_counts.affected[first:first + pass1.documents]
            strip_boilerplate(iter_tables(scratch / f"{block:05d}"), affected, out, line_counts,
                              params.min_chars, block_report)
        first += pass1.documents
        block_report.docs_out, block_report.bytes_out = out.documents, out.bytes
        report.merge(block_report)
    return report
