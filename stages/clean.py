"""clean: merged documents -> normalized, filtered, scrubbed, deduplicated documents.

Pass 1 streams the merged documents through `DocumentCleaner` in worker
processes (normalize, length and quality filters, personal-data scrubbing,
hashes) and decides, in document order, which to keep: exact duplicates by
content hash, near duplicates by MinHash LSH. With clean.engine: ray, Ray Data
runs the same DocumentCleaner and makes the same decisions with groupbys
(stages/lib/engines/ray_clean.py); the rest of the stage is the same. Kept documents go to a
temporary Parquet folder while their lines are counted across documents.
Pass 2 cuts boilerplate lines (found in many documents) from the kept
documents that hold some, and copies the others as they are.

Outputs: data/interim/clean/ (documents), metrics/clean.json (counts and
bytes per rule), reports/clean/removed.md (examples of what was removed).
"""
from __future__ import annotations

import collections
import tempfile
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from stages.lib.atomic import atomic_dir, remove_leftovers, scratch_prefix, write_json, write_text
from stages.lib.data.cleaning import DocResult, DocumentCleaner
from stages.lib.data.documents import Document, DocumentWriter, iter_batches, iter_tables
from stages.lib.errors import UserError, run_stage
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import NearDuplicateIndex
from stages.lib.data.parallel import ordered_map, resolve_workers
from stages.lib.params import CleanParams, load_params

PARAM_SECTIONS = ["clean"]
IN_DIR = Path("data/interim/merged")
OUT_DIR = Path("data/interim/clean")
PASS1_DIR = Path("data/interim/clean-pass1")  # scratch: the kept documents before boilerplate removal
METRICS = Path("metrics/clean.json")
REPORT = Path("reports/clean/removed.md")
BATCH_BYTES = 2 << 20  # text per task sent to a worker
MAX_BOILERPLATE_KINDS = 10_000  # distinct boilerplate units counted for the report's examples


class CleanReport:
    """Counts documents and bytes per removal reason, and keeps a few examples of each."""

    def __init__(self, examples_per_reason: int):
        self.examples_per_reason = examples_per_reason
        self.docs_in = self.bytes_in = self.docs_out = self.bytes_out = 0
        self.removed_docs: collections.Counter = collections.Counter()
        self.removed_bytes: collections.Counter = collections.Counter()
        self.pii: collections.Counter = collections.Counter()
        self.examples: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        # Boilerplate is cut from documents that stay: lines, not documents, so counted apart.
        self.boilerplate_units = self.boilerplate_docs = self.boilerplate_bytes = 0
        self.boilerplate_examples: collections.Counter = collections.Counter()  # unit -> times cut

    def cut_boilerplate(self, units: list[str]) -> None:
        self.boilerplate_units += len(units)
        self.boilerplate_docs += 1
        self.boilerplate_bytes += sum(len(unit.encode("utf-8")) + 1 for unit in units)  # +1: its line break
        for unit in map(str.strip, units):
            # Counted while the table is small or the unit already in it: memory stays bounded.
            if unit in self.boilerplate_examples or len(self.boilerplate_examples) < MAX_BOILERPLATE_KINDS:
                self.boilerplate_examples[unit] += 1

    def summary(self) -> str:
        """One line for the console: documents removed per reason, then boilerplate cut from kept ones."""
        removed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.removed_docs.items())) or "none"
        line = f"removed {sum(self.removed_docs.values())} documents ({removed})"
        if self.boilerplate_units:
            line += (f"; cut {self.boilerplate_units} boilerplate lines ({self.boilerplate_bytes / 1e3:.1f} KB) "
                     f"from {self.boilerplate_docs} documents, see {REPORT}")
        return line

    def remove(self, reason: str, doc_id: str, nbytes: int, excerpt: str) -> None:
        self.removed_docs[reason] += 1
        self.removed_bytes[reason] += nbytes
        if len(self.examples[reason]) < self.examples_per_reason:
            self.examples[reason].append((doc_id, excerpt))

    def metrics(self) -> dict:
        flat = {"documents_in": self.docs_in, "bytes_in": self.bytes_in,
                "documents_out": self.docs_out, "bytes_out": self.bytes_out,
                "boilerplate_units_removed": self.boilerplate_units,
                "boilerplate_bytes_removed": self.boilerplate_bytes}
        for reason in sorted(self.removed_docs):
            flat[f"removed_documents_{reason}"] = self.removed_docs[reason]
            flat[f"removed_bytes_{reason}"] = self.removed_bytes[reason]
        for kind in sorted(self.pii):
            flat[f"pii_{kind}"] = self.pii[kind]
        return flat

    def markdown(self) -> str:
        lines = ["# Removed by clean", "", "| reason | documents | bytes |", "|---|---:|---:|"]
        lines += [f"| {r} | {self.removed_docs[r]} | {self.removed_bytes[r]} |" for r in sorted(self.removed_docs)]
        if self.boilerplate_units:
            lines += [f"| boilerplate lines (cut from {self.boilerplate_docs} kept documents) | "
                      f"{self.boilerplate_units} lines | {self.boilerplate_bytes} |"]
            lines += ["", "## boilerplate", "", "The most frequent units cut (clean.line_dedupe), with the times "
                      "each was cut:", ""]
            for unit, times in self.boilerplate_examples.most_common(self.examples_per_reason * 4):
                lines.append(f"- {times}x: {unit[:300]}")
        for reason in sorted(self.examples):
            lines += ["", f"## {reason}", ""]
            for doc_id, excerpt in self.examples[reason]:
                quoted = excerpt.strip().replace("\n", " ⏎ ")[:300]
                lines.append(f"- `{doc_id}`: {quoted}")
        return "\n".join(lines) + "\n"


def read_batches(in_dir: Path) -> Iterator[list[tuple[str, str, str]]]:
    """Documents grouped into tasks of about BATCH_BYTES of text."""
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
    """Local engine: mark exact and near duplicates in document order, so the first copy is kept."""
    seen_hashes: set[int] = set()
    near = params.near_dedupe
    near_index = NearDuplicateIndex.from_params(near) if near.enabled else None
    for result in results:
        if result.reason is None and params.exact_dedupe:
            if result.content_hash in seen_hashes:
                result.reason = "exact_duplicate"
            seen_hashes.add(result.content_hash)
        if result.reason is None and near_index is not None and result.signature is not None:
            match = near_index.add_or_match(result.id, result.signature)
            if match is not None:
                result.mark_near_duplicate(*match)
        yield result


def keep(results: Iterator[DocResult], report: CleanReport, writer: DocumentWriter,
         line_counts: LineFrequency | None) -> None:
    """Pass 1's bookkeeping, the same for both engines: count every document, write the kept ones."""
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


def cleaned(params: CleanParams, cleaner: DocumentCleaner, line_counts: LineFrequency | None) -> Iterator[DocResult]:
    """Every document's result in document order, duplicates marked: by the engine that clean.engine names.

    local: per-document work in a process pool, dedupe decisions here in order.
    ray: both on Ray Data (map_batches, groupbys); the engine gives line_counts the boilerplate it counted.
    """
    if params.engine == "ray":
        from stages.lib.engines import ray_clean  # Ray is imported only when asked for
        yield from ray_clean.cleaned(IN_DIR, params, cleaner, line_counts)
        return
    results = (r for batch in ordered_map(cleaner.clean_batch, read_batches(IN_DIR), resolve_workers(params.workers))
               for r in batch)
    yield from deduplicate(results, params)


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


def main() -> None:
    params: CleanParams = load_params(PARAM_SECTIONS)["clean"]
    report = CleanReport(params.report_examples)
    cleaner = DocumentCleaner(params)
    lines = params.line_dedupe
    line_counts = LineFrequency(lines.unit, lines.min_chars) if lines.enabled else None

    remove_leftovers(PASS1_DIR)  # a killed run's scratch copy of the corpus
    with atomic_dir(OUT_DIR) as out_dir, tempfile.TemporaryDirectory(prefix=scratch_prefix(PASS1_DIR), suffix=".tmp",
                                                                      dir=PASS1_DIR.parent) as pass1_dir:
        # Pass 1: per-document work in parallel, dedupe decisions in order.
        results = tqdm(cleaned(params, cleaner, line_counts), desc="clean", unit="doc")
        kept_dir = Path(pass1_dir) if line_counts is not None else out_dir
        with DocumentWriter(kept_dir, compression="none" if line_counts is not None else "zstd") as writer:
            keep(results, report, writer, line_counts)

        # Pass 2: cut boilerplate from the kept documents.
        if line_counts is not None:
            line_counts.finalize(lines.min_docs)
            writer = strip_boilerplate(kept_dir, out_dir, line_counts, params.min_chars, report)
        report.docs_out, report.bytes_out = writer.documents, writer.bytes

        write_text(REPORT, report.markdown())
        if report.docs_out == 0:
            raise UserError(f"clean removed every document ({dict(report.removed_docs)}); "
                            f"see {REPORT} and loosen the clean.* thresholds")

    write_json(METRICS, report.metrics())
    print(f"clean: kept {report.docs_out} of {report.docs_in} documents, "
          f"{report.bytes_out / 1e6:.1f} of {report.bytes_in / 1e6:.1f} MB; {report.summary()}")


if __name__ == "__main__":
    run_stage(main)
