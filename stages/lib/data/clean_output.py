"""Writing what the clean stage keeps, one block (input part) at a time, the same whichever engine decided.

Pass 1 (`count` and `write_kept`) takes every document's result in document
order, counts it in the block's CleanReport and writes the kept ones. Pass 2
(`strip_boilerplate`) reads a block's kept documents back and cuts the lines
found in many documents of the corpus. Both engines call these functions,
the local one in this process and the Ray one in the task that owns the
block, so the parts written are the same bytes.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from stages.lib.data.clean_report import CleanReport
from stages.lib.data.cleaning import DocResult
from stages.lib.data.documents import Document, DocumentWriter
from stages.lib.data.line_dedupe import LineFrequency


def count(result: DocResult, report: CleanReport) -> bool:
    """Count one document's result in the report; True when no filter or dedupe step removed it."""
    report.docs_in += 1
    report.bytes_in += result.bytes_in
    report.pii.update(result.pii)
    if result.reason is not None:
        report.remove(result.reason, result.id, result.bytes_in, result.text)
        return False
    return True


def write_kept(results: Iterable[DocResult], report: CleanReport, writer: DocumentWriter,
               line_counts: LineFrequency | None = None) -> None:
    """Pass 1: count every document, write the kept ones (and record their long lines in line_counts)."""
    for result in results:
        if count(result, report):
            writer.write(Document(result.id, result.source, result.text))
            if line_counts is not None:
                line_counts.add_hashes(result.unit_hashes)  # hashed in the worker


def strip_boilerplate(tables: Iterator[pa.Table], affected: np.ndarray, writer: DocumentWriter,
                      line_counts: LineFrequency, min_chars: int, report: CleanReport) -> None:
    """Pass 2 over one block's kept documents: cut boilerplate from those that hold some (`affected`, one
    flag per document in order) and copy the rest as Arrow tables, without making Python strings."""
    first = 0
    for table in tables:
        hits = affected[first:first + table.num_rows]
        first += table.num_rows
        if not hits.any():
            writer.write_table(table)
            continue
        cols = table.to_pydict()
        for doc_id, source, text, hit in zip(cols["id"], cols["source"], cols["text"], hits):
            if hit:
                text, removed_units = line_counts.cut(text)
                if removed_units:
                    report.cut_boilerplate(removed_units)
                if len(text.strip()) < min_chars:
                    report.remove("too_short_after_boilerplate", doc_id, len(text.encode("utf-8")), text)
                    continue
            writer.write(Document(doc_id, source, text))
