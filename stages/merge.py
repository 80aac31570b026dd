"""merge: every accepted file under merge.input_dir becomes documents in data/interim/merged/.

Files are read in sorted path order, so the same folder always gives the same
documents. Runs of files of about 32 MB are blocks, each written to its own
part files (part-00000.parquet for the first) by the engine merge.engine
names: local, a process pool on this machine (stages/lib/engines/local_merge.py);
ray, a Ray task per block (ray_merge.py). Skipped files and invalid UTF-8 are
counted in metrics/merge.json.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from stages.lib.atomic import atomic_dir, write_json
from stages.lib.data.sources import SourceStats, file_blocks, find_input_files
from stages.lib.engines.require import require_ray
from stages.lib.errors import UserError, run_stage
from stages.lib.params import load_params

PARAM_SECTIONS = ["merge"]
OUT_DIR = Path("data/interim/merged")
METRICS = Path("metrics/merge.json")


def engine(name: str) -> ModuleType:
    """The engine merge.engine names: both write blocks with the same `write_blocks`; Ray loads only if asked."""
    if name == "ray":
        require_ray("merge.engine")
        from stages.lib.engines import ray_merge
        return ray_merge
    from stages.lib.engines import local_merge
    return local_merge


def main() -> None:
    params = load_params(PARAM_SECTIONS)["merge"]
    input_dir = Path(params.input_dir)
    stats = SourceStats()

    files = find_input_files(input_dir, params.extensions, stats, params.bad_files)
    blocks = file_blocks(files, input_dir, stats)
    with atomic_dir(OUT_DIR) as tmp_dir:
        stats.add(engine(params.engine).write_blocks(blocks, tmp_dir, params))
        if stats.documents == 0:
            raise UserError(f"no documents found in {input_dir}: every file was empty or skipped "
                            f"(skipped: {stats.files_skipped or 'none'})")

    for rel, count in stats.invalid_utf8.items():
        print(f"warning: {rel}: {count} invalid UTF-8 sequence(s) ({params.encoding_errors})")
    for rel, count in stats.bad_records.items():
        print(f"warning: {rel}: skipped {count} bad record(s) (merge.bad_files=skip)")
    for rel, count in stats.too_long.items():
        print(f"warning: {rel}: skipped {count} document(s) longer than merge.max_doc_chars={params.max_doc_chars:,} "
              f"characters (raise it to keep them)")
    for rel, reason in stats.files_skipped.items():
        print(f"warning: skipped {rel}: {reason}")
    for message in stats.warnings:
        print(f"warning: {message}")
    write_json(METRICS, {
        "files_read": stats.files_read,
        "files_empty": stats.files_empty,
        "files_skipped": len(stats.files_skipped),
        "skipped_by_extension": dict(sorted(stats.skipped_by_extension.items())),
        "invalid_utf8_files": len(stats.invalid_utf8),
        "invalid_utf8_sequences": sum(stats.invalid_utf8.values()),
        "bad_records": sum(stats.bad_records.values()),
        "documents_too_long": sum(stats.too_long.values()),
        "documents": stats.documents,
        "bytes": stats.bytes,
    })
    print(f"merge: {stats.documents} documents, {stats.bytes / 1e6:.1f} MB from {stats.files_read} files")


if __name__ == "__main__":
    run_stage(main)
