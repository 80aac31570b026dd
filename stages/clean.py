"""clean: merged documents -> normalized, filtered, scrubbed, deduplicated documents.

Pass 1: the engine clean.engine names runs `DocumentCleaner` over every
document (normalize, length and quality filters, personal-data scrubbing,
hashes) and decides which to keep: exact duplicates by content hash, near
duplicates by MinHash LSH, the first copy in document order kept. local: a
process pool, decisions in this process (stages/lib/engines/local_clean.py);
ray: Ray Data map_batches and groupbys (ray_clean.py); the decisions are the
same. Kept documents go to a temporary Parquet folder while their lines are
counted across documents. Pass 2 cuts boilerplate lines (found in many
documents) from the kept documents that hold some, and copies the others as
they are.

Outputs: data/interim/clean/ (documents), metrics/clean.json (counts and
bytes per rule), reports/clean/removed.md (bytes and the params key per
reason, examples with the measured value against the threshold). A reason
that removes more than a fifth of the bytes prints a warning line.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from stages.lib.atomic import atomic_dir, scratch_dir, write_json, write_text
from stages.lib.data.clean_output import strip_boilerplate, write_kept
from stages.lib.data.clean_report import CleanReport
from stages.lib.data.cleaning import DocumentCleaner
from stages.lib.data.documents import DocumentWriter
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.engines.require import require_ray
from stages.lib.errors import UserError, run_stage
from stages.lib.params import CleanParams, load_params

PARAM_SECTIONS = ["clean"]
IN_DIR = Path("data/interim/merged")
OUT_DIR = Path("data/interim/clean")
PASS1_DIR = Path("data/interim/clean-pass1")  # names the scratch folder: kept documents before boilerplate removal
METRICS = Path("metrics/clean.json")
REPORT = Path("reports/clean/removed.md")


def engine(name: str) -> ModuleType:
    """The engine clean.engine names: both give the same `cleaned` results; Ray loads only if asked."""
    if name == "ray":
        require_ray("clean.engine")
        from stages.lib.engines import ray_clean
        return ray_clean
    from stages.lib.engines import local_clean
    return local_clean


def main() -> None:
    params: CleanParams = load_params(PARAM_SECTIONS)["clean"]
    report = CleanReport(params.report_examples)
    cleaner = DocumentCleaner(params)
    lines = params.line_dedupe
    line_counts = LineFrequency(lines.unit, lines.min_chars) if lines.enabled else None

    with atomic_dir(OUT_DIR) as out_dir, scratch_dir(PASS1_DIR) as pass1_dir:
        # Pass 1: every document cleaned and the duplicates marked, in document order.
        results = tqdm(engine(params.engine).cleaned(IN_DIR, params, cleaner, line_counts), desc="clean", unit="doc")
        kept_dir = pass1_dir if line_counts is not None else out_dir
        with DocumentWriter(kept_dir, compression="none" if line_counts is not None else "zstd") as writer:
            write_kept(results, report, writer, line_counts)

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
          f"{report.bytes_out / 1e6:.1f} of {report.bytes_in / 1e6:.1f} MB; {report.summary(REPORT)}")
    for line in report.warnings():
        print(f"clean: {line}")


if __name__ == "__main__":
    run_stage(main)
