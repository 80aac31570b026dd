"""Writing what the clean stage keeps, the same whichever engine decided: two passes over the documents.

Pass 1 (`write_kept`) takes every document's result in document order,
counts it in the CleanReport and writes the kept ones, recording for each
which long lines it holds. Pass 2 (`strip_boilerplate`) reads the kept
documents back and cuts the lines found in many of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from stages.lib.data.clean_report import CleanReport
from stages.lib.data.cleaning import DocResult
from stages.lib.data.documents import Document, DocumentWriter, iter_tables
from stages.lib.data.line_dedupe import LineFrequency


def write_kept(results: Iterator[DocResult], report: CleanReport, writer: DocumentWriter,
               line_counts: LineFrequency | None) -> None:
    """Pass 1: count every document, write the kept ones."""
    for result in results:
        report.docs_in += 1
        report.bytes_in += result.bytes_in
        report.pii.update(result.pii)
        if result.reason is not None:
            report.remove(result.reason, result.id, result.bytes_in, result.text)
            continue
        writer.write(Document(result.id, result.source, result.text))
        if line_counts is not None:
            line_counts.add_hashes(result.unit_hashes)  # hashed in the worker


def strip_boilerplate(kept_dir: Path, out_dir: Path, line_counts: LineFrequency, min_chars: int,
                      report: CleanReport) -> DocumentWriter:
    """Pass 2: cut boilerplate from the documents that hold some; copy the rest as Arrow tables.

    Pass 1 recorded which documents hold boilerplate, so a row group without
    any goes to the output without becoming Python strings.
    """
    first = 0
    with DocumentWriter(out_dir) as writer:
        for table in iter_tables(kept_dir):
            affected = line_counts.affected[first:first + table.num_rows]
            first += table.num_rows
            if not affected.any():
                writer.write_table(table)
                continue
            cols = table.to_pydict()
            for doc_id, source, text, hit in zip(cols["id"], cols["source"], cols["text"], affected):
                if hit:
                    text, removed_units = line_counts.cut(text)
                    if removed_units:
                        report.cut_boilerplate(removed_units)
                    if len(text.strip()) < min_chars:
                        report.remove("too_short_after_boilerplate", doc_id, len(text.encode("utf-8")), text)
                        continue
                writer.write(Document(doc_id, source, text))
    return writer
