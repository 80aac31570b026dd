"""clean: merged documents -> normalized, filtered, scrubbed, deduplicated documents.

Every document goes through `DocumentCleaner` (normalize, length and quality
filters, personal-data scrubbing, hashes); then duplicates are marked, exact
ones by content hash and near ones by MinHash LSH, the first copy in document
order kept; then lines found in many kept documents (boilerplate) are cut.
Each input part is a block with its own output part (part-<block>.parquet).
The engine clean.engine names does the work: local, a process pool with the
decisions in this process (stages/lib/engines/local_clean.py); ray, Ray Data
tasks that write their blocks' parts themselves, the decisions made by
shuffles on the cluster (ray_clean.py). The files are the same.

Outputs: data/interim/clean/ (documents), metrics/clean.json (counts and
bytes per rule), reports/clean/removed.md (bytes and the params key per
reason, examples with the measured value against the threshold). A reason
that removes more than a fifth of the bytes prints a warning line.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from stages.lib.atomic import atomic_dir, scratch_dir, write_json, write_text
from stages.lib.data.cleaning import DocumentCleaner
from stages.lib.engines.require import require_ray
from stages.lib.errors import UserError, run_stage
from stages.lib.params import CleanParams, load_params

PARAM_SECTIONS = ["clean"]
IN_DIR = Path("data/interim/merged")
OUT_DIR = Path("data/interim/clean")
SCRATCH = Path("data/interim/clean-scratch")  # names the scratch folder of the engine's intermediate files
METRICS = Path("metrics/clean.json")
REPORT = Path("reports/clean/removed.md")


def engine(name: str) -> ModuleType:
    """The engine clean.engine names: both `clean` write the same parts and report; Ray loads only if asked."""
    if name == "ray":
        require_ray("clean.engine")
        from stages.lib.engines import ray_clean
        return ray_clean
    from stages.lib.engines import local_clean
    return local_clean


def main() -> None:
    params: CleanParams = load_params(PARAM_SECTIONS)["clean"]
    cleaner = DocumentCleaner(params)

    with atomic_dir(OUT_DIR) as out_dir, scratch_dir(SCRATCH) as scratch:
        report = engine(params.engine).clean(IN_DIR, out_dir, scratch, params, cleaner)
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
