"""clean on Ray Data: every block (input part) is cleaned and written by a Ray task; duplicates are decided
by shuffles on the cluster. The driver sees block lists, counters and reports, never documents.

The local engine (local_clean.py) decides duplicates in one process, in
document order. Here each document keeps its global `index` (its position in
data/interim/merged), so "first in document order" means what it means there,
and the decisions come out the same:

1. pass 1, a task per block: `DocumentCleaner.clean_batch`, the local
   engine's function; the filter removals go to the block's report, the
   documents that passed to scratch/passed/part-<block>.parquet (text,
   content hash, sketch, long-line hashes).
2. exact duplicates: a shuffle by content hash; in each hash's group all but
   the smallest index are duplicates of it.
3. near duplicates, over the first copy of each text: a shuffle by LSH band
   key finds the keys two or more documents hold; documents connected by
   shared keys form components (`component_labels`); a shuffle by component
   hands each whole component to one task, which runs the local engine's
   NearDuplicateIndex over it in document order. The local rule (a document is
   dropped when the first kept document under one of its keys is similar
   enough) only ever compares documents that share a key, so within a
   component it makes the decisions it makes over the whole corpus.
4. the decisions are written per block (scratch/decisions/part-<block>.parquet)
   by a shuffle by block.
5. boilerplate: the long-line hashes of the kept documents, a shuffle by hash,
   the ones held by at least min_docs documents written to scratch/boilerplate/.
6. pass 2, a task per block: the block's kept documents, boilerplate cut,
   written to out_dir/part-<block>.parquet by `clean_output`, as the local
   engine writes them; its report goes back to the driver.

A task's memory is bounded by its block and its shuffle partition, not by the
corpus; a component of near duplicates is resolved in one task (512 bytes a
document).
"""
from __future__ import annotations

import functools
import pickle
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray.data
from tqdm import tqdm

from stages.lib.data.clean_output import count, strip_boilerplate
from stages.lib.data.clean_report import CleanReport
from stages.lib.data.cleaning import DocResult, DocumentCleaner
from stages.lib.data.documents import Document, DocumentWriter, iter_tables, part_files, part_tables
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import NearDuplicateIndex, Sketch
from stages.lib.engines.ray_session import map_tables, map_tasks, ray_session, run_tasks, stream
from stages.lib.engines.ray_shuffle import by_key, component_labels, group_min, partitions_for
from stages.lib.params import CleanParams, NearDedupeParams

PASSED = pa.schema([("index", pa.int64()), ("id", pa.string()), ("source", pa.string()),
                    ("text", pa.large_string()), ("bytes_in", pa.int64()), ("content_hash", pa.uint64()),
                    ("signature", pa.binary()), ("shingles", pa.int64()), ("unit_hashes", pa.list_(pa.uint64()))])
DECISIONS = pa.schema([("index", pa.int64()), ("reason", pa.string()), ("other", pa.string()),
                       ("jaccard", pa.float64()), ("containment", pa.float64())])
SKETCHES = pa.schema([("index", pa.int64()), ("label", pa.int64()), ("id", pa.string()),
                      ("signature", pa.binary()), ("shingles", pa.int64())])


def block_tasks(in_dir: Path, scratch: Path) -> list[dict]:
    """One task per input part, with the global index of its first document (from the files' footers)."""
    tasks, first = [], 0
    for block, path in enumerate(part_files(in_dir)):
        tasks.append({"block": block, "path": str(path.absolute()), "first": first,
                      "passed": str(scratch.absolute() / "passed" / f"part-{block:05d}.parquet"),
                      "decisions": str(scratch.absolute() / "decisions" / f"part-{block:05d}.parquet"),
                      "kept": str(scratch.absolute() / "kept" / f"{block:05d}")})
        first += pq.ParquetFile(path).metadata.num_rows
    return tasks


def _reports(rows: Iterator[pa.Table], report: CleanReport, desc: str, blocks: int) -> dict[str, int]:
    """Merge the blocks' reports in block order (each task yields one row); the other columns summed."""
    totals: dict[str, int] = {}
    with tqdm(total=blocks, desc=desc, unit="block") as progress:
        for table in rows:
            for row in table.to_pylist():
                report.merge(pickle.loads(row.pop("report")))
                for name, value in row.items():
                    totals[name] = totals.get(name, 0) + value
                progress.update(1)
    return totals


# --------------------------------------------------------------------------- 1. pass 1, a task per block

def _pass1(cleaner: DocumentCleaner, params: CleanParams, task: dict) -> Iterator[pa.Table]:
    report, index = CleanReport(params.report_examples), task["first"]
    Path(task["passed"]).parent.mkdir(parents=True, exist_ok=True)
    passed, units = 0, 0
    with pq.ParquetWriter(task["passed"], PASSED, compression="none") as writer:
        for table in part_tables(task["path"]):
            docs = table.to_pydict()
            results = cleaner.clean_batch(list(zip(docs["id"], docs["source"], docs["text"])))
            rows = [(index + i, r) for i, r in enumerate(results) if count(r, report)]
            index += len(results)
            writer.write_table(_passed_table(rows))
            passed += len(rows)
            units += sum(0 if r.unit_hashes is None else len(r.unit_hashes) for _, r in rows)
    yield pa.table({"report": [pickle.dumps(report)], "passed": [passed], "units": [units]})


def _passed_table(rows: list[tuple[int, DocResult]]) -> pa.Table:
    return pa.table({
        "index": [i for i, _ in rows], "id": [r.id for _, r in rows], "source": [r.source for _, r in rows],
        "text": [r.text for _, r in rows], "bytes_in": [r.bytes_in for _, r in rows],
        "content_hash": [r.content_hash for _, r in rows],
        "signature": [None if r.signature is None else r.signature.signature.tobytes() for _, r in rows],
        "shingles": [0 if r.signature is None else r.signature.shingles for _, r in rows],
        "unit_hashes": [None if r.unit_hashes is None else r.unit_hashes.tolist() for _, r in rows],
    }, schema=PASSED)


# --------------------------------------------------------------------------- 2. exact duplicates

def _exact(table: pa.Table) -> pa.Table:
    """Per document: `other` = the id of the first document with its content hash, null for that first one."""
    order = np.lexsort((table["index"].to_numpy(), table["content_hash"].to_numpy()))
    table = table.take(pa.array(order, pa.int64()))
    hashes = table["content_hash"].to_numpy()
    first = np.r_[True, hashes[1:] != hashes[:-1]] if len(hashes) else np.zeros(0, bool)
    group_first = np.maximum.accumulate(np.where(first, np.arange(len(hashes)), 0))
    ids = table["id"].to_numpy(zero_copy_only=False)
    other = np.where(first, None, ids[group_first])
    return table.select(["index", "id", "signature", "shingles"]).append_column("other", pa.array(other, pa.string()))


def _exact_decisions(table: pa.Table) -> pa.Table:
    dups = table.filter(pc.is_valid(table["other"]))
    n = dups.num_rows
    return pa.table({"index": dups["index"], "reason": pa.array(["exact_duplicate"] * n, pa.string()),
                     "other": dups["other"], "jaccard": pa.nulls(n, pa.float64()),
                     "containment": pa.nulls(n, pa.float64())}, schema=DECISIONS)


def _near_candidates(table: pa.Table) -> pa.Table:
    """The documents near dedupe looks at: first copies (no `other`) with a sketch, as SKETCHES rows."""
    if "other" in table.column_names:
        table = table.filter(pc.is_null(table["other"]))
    table = table.filter(pc.is_valid(table["signature"]))
    return pa.table({"index": table["index"], "label": pa.nulls(table.num_rows, pa.int64()), "id": table["id"],
                     "signature": table["signature"], "shingles": table["shingles"]}, schema=SKETCHES)


# --------------------------------------------------------------------------- 3. near duplicates

def _signatures(table: pa.Table, num_perm: int) -> np.ndarray:
    """The signature column as uint16 [rows, num_perm]."""
    return np.frombuffer(b"".join(table["signature"].to_pylist()), np.uint16).reshape(table.num_rows, num_perm)


def _band_rows(near: NearDedupeParams, table: pa.Table) -> pa.Table:
    """(key, index): one row per LSH band key of each candidate."""
    keys = NearDuplicateIndex.from_params(near).band_keys(_signatures(table, near.num_perm))  # [rows, bands]
    index = np.repeat(table["index"].to_numpy(), keys.shape[1] if keys.ndim == 2 else 0)
    return pa.table({"key": keys.ravel(), "index": index})


def _shared(table: pa.Table) -> pa.Table:
    """The rows of keys that two or more documents hold, labelled with the smallest index under the key."""
    keys, index = table["key"].to_numpy(), table["index"].to_numpy()
    order = np.lexsort((index, keys))
    keys, index = keys[order], index[order]
    fresh = np.r_[True, (keys[1:] != keys[:-1]) | (index[1:] != index[:-1])] if len(keys) else np.zeros(0, bool)
    keys, index = keys[fresh], index[fresh]  # (a key twice in one document is one row)
    _, inverse, holders = np.unique(keys, return_inverse=True, return_counts=True)
    shared = holders[inverse] >= 2
    keys, index = keys[shared], index[shared]
    return pa.table({"key": keys, "index": index, "label": group_min(keys, index)})


def _attach_labels(table: pa.Table) -> pa.Table:
    """Candidates (SKETCHES rows with no label) that are in a component, with its label; the others go."""
    labelled = pc.is_valid(table["label"]).to_numpy(zero_copy_only=False)
    index = table["index"].to_numpy()
    label = group_min(index[labelled], table["label"].to_numpy(zero_copy_only=False)[labelled].astype(np.int64))
    docs, first = np.unique(index[labelled], return_index=True)
    candidates = table.filter(pa.array(~labelled))
    at = np.minimum(np.searchsorted(docs, candidates["index"].to_numpy()), max(len(docs) - 1, 0))
    inside = (docs[at] == candidates["index"].to_numpy()) if len(docs) else np.zeros(candidates.num_rows, bool)
    candidates = candidates.filter(pa.array(inside))
    return candidates.set_column(1, "label", pa.array(label[first][at[inside]], pa.int64()))


def _resolve(near: NearDedupeParams, table: pa.Table) -> pa.Table:
    """Whole components, in document order, through the local engine's NearDuplicateIndex."""
    table = table.take(pa.array(np.argsort(table["index"].to_numpy(), kind="stable"), pa.int64()))
    index = NearDuplicateIndex.from_params(near)
    signatures = _signatures(table, near.num_perm)
    rows = []
    for i, (doc, doc_id, shingles) in enumerate(zip(table["index"].to_pylist(), table["id"].to_pylist(),
                                                    table["shingles"].to_pylist())):
        match = index.add_or_match(doc_id, Sketch(signatures[i], shingles))
        if match is not None:
            rows.append((doc, "near_duplicate", *match))
    return pa.table({name: [row[k] for row in rows] for k, name in enumerate(DECISIONS.names)}, schema=DECISIONS)


def near_duplicates(candidates: ray.data.Dataset, near: NearDedupeParams,
                    partitions: int) -> ray.data.Dataset | None:
    """Decisions: the candidates that are near duplicates of an earlier kept one (None: no key is shared)."""
    keys = map_tables(candidates, functools.partial(_band_rows, near))
    members = by_key(keys, "key", partitions, _shared).materialize()
    if members.count() == 0:
        return None
    labels = component_labels(members, partitions)
    as_sketches = map_tables(labels, lambda t: pa.table({
        "index": t["index"], "label": t["label"], "id": pa.nulls(t.num_rows, pa.string()),
        "signature": pa.nulls(t.num_rows, pa.binary()), "shingles": pa.nulls(t.num_rows, pa.int64())},
        schema=SKETCHES))
    components = by_key(as_sketches.union(candidates), "index", partitions, _attach_labels)
    return by_key(components, "label", partitions, functools.partial(_resolve, near))


# --------------------------------------------------------------------------- 4. decisions per block

def _write_decisions(starts: np.ndarray, folder: str, table: pa.Table) -> pa.Table:
    """One block's decisions (a group of the shuffle by block) to its file, in document order."""
    block = int(table["block"][0].as_py())
    table = table.drop_columns(["block"])
    table = table.take(pa.array(np.argsort(table["index"].to_numpy(), kind="stable"), pa.int64()))
    pq.write_table(table.cast(DECISIONS), f"{folder}/part-{block:05d}.parquet")
    return pa.table({"block": [block]})


def write_decisions(decisions: ray.data.Dataset, tasks: list[dict], scratch: Path, partitions: int) -> None:
    starts = np.array([task["first"] for task in tasks], np.int64)
    folder = scratch.absolute() / "decisions"
    folder.mkdir(parents=True, exist_ok=True)
    tagged = map_tables(decisions, lambda t: t.append_column(
        "block", pa.array(np.searchsorted(starts, t["index"].to_numpy(), side="right") - 1, pa.int64())))
    written = tagged.groupby("block", num_partitions=partitions).map_groups(
        functools.partial(_write_decisions, starts, str(folder)), batch_format="pyarrow")
    for _ in stream(written):
        pass


def decide(tasks: list[dict], params: CleanParams, passed: int, scratch: Path) -> None:
    """Exact and near duplicates, written per block."""
    if passed == 0 or not (params.exact_dedupe or params.near_dedupe.enabled):
        return
    partitions = partitions_for(passed)
    docs = ray.data.read_parquet([t["passed"] for t in tasks]).select_columns(
        ["index", "id", "content_hash", "signature", "shingles"])  # (read as such: the text stays on disk)
    parts = []
    if params.exact_dedupe:
        docs = by_key(docs, "content_hash", partitions, _exact).materialize()
        parts.append(map_tables(docs, _exact_decisions))
    if params.near_dedupe.enabled:
        candidates = map_tables(docs, _near_candidates).materialize()
        parts.append(near_duplicates(candidates, params.near_dedupe, partitions))
    parts = [part.materialize() for part in parts if part is not None]
    parts = [part for part in parts if part.count()]
    if parts:
        write_decisions(parts[0] if len(parts) == 1 else parts[0].union(*parts[1:]), tasks, scratch, partitions)


# --------------------------------------------------------------------------- 5. boilerplate

def _read_decisions(task: dict) -> dict[int, tuple]:
    """index -> (reason, other, jaccard, containment) for the block's duplicates."""
    if not Path(task["decisions"]).exists():
        return {}
    table = pq.read_table(task["decisions"])
    return {row.pop("index"): tuple(row.values()) for row in table.to_pylist()}


def _kept_units(task: dict) -> Iterator[pa.Table]:
    removed = np.array(sorted(_read_decisions(task)), np.int64)
    table = pq.read_table(task["passed"], columns=["index", "unit_hashes"])
    kept = table.filter(pa.array(~np.isin(table["index"].to_numpy(), removed)))
    yield pa.table({"unit": kept["unit_hashes"].combine_chunks().flatten() if kept.num_rows
                    else pa.array([], pa.uint64())})


def _frequent(min_docs: int, table: pa.Table) -> pa.Table:
    units, docs = np.unique(table["unit"].to_numpy(), return_counts=True)  # a unit is distinct per document
    return pa.table({"unit": units[docs >= min_docs]})


def count_boilerplate(tasks: list[dict], params: CleanParams, units: int, scratch: Path) -> None:
    """The long units held by at least line_dedupe.min_docs kept documents, to scratch/boilerplate/."""
    found = by_key(map_tasks(tasks, _kept_units), "unit", partitions_for(units),
                   functools.partial(_frequent, params.line_dedupe.min_docs))
    found.write_parquet(str(scratch.absolute() / "boilerplate"))


@functools.lru_cache(maxsize=1)
def _boilerplate(folder: str, unit: str, min_chars: int) -> LineFrequency:
    """The boilerplate table, loaded once per worker process."""
    files = sorted(Path(folder).glob("*.parquet")) if Path(folder).is_dir() else []
    hashes = [pq.read_table(f)["unit"].to_numpy() for f in files]
    line_counts = LineFrequency(unit, min_chars)
    line_counts.set_boilerplate(np.concatenate(hashes) if hashes else np.zeros(0, np.uint64))
    return line_counts


# --------------------------------------------------------------------------- 6. pass 2, a task per block

def _finish(params: CleanParams, scratch: str, out_dir: str, task: dict) -> Iterator[pa.Table]:
    report, decisions = CleanReport(params.report_examples), _read_decisions(task)
    lines = params.line_dedupe
    line_counts = _boilerplate(f"{scratch}/boilerplate", lines.unit, lines.min_chars) if lines.enabled else None
    kept_dir = task["kept"] if line_counts is not None else out_dir
    holds = []
    with DocumentWriter(kept_dir, block=task["block"], compression="none" if line_counts else "zstd") as kept:
        for table in part_tables(task["passed"]):
            for row in table.to_pylist():
                if row["index"] in decisions:
                    _remove(row, decisions[row["index"]], report)
                    continue
                kept.write(Document(row["id"], row["source"], row["text"]))
                if line_counts is not None:
                    holds.append(line_counts.holds(np.array(row["unit_hashes"] or [], np.uint64)))
    out = kept
    if line_counts is not None:
        with DocumentWriter(out_dir, block=task["block"]) as out:
            strip_boilerplate(iter_tables(kept_dir), np.array(holds, bool), out, line_counts, params.min_chars,
                              report)
        shutil.rmtree(kept_dir, ignore_errors=True)
    yield pa.table({"report": [pickle.dumps(report)], "docs_out": [out.documents], "bytes_out": [out.bytes]})


def _remove(row: dict, decision: tuple, report: CleanReport) -> None:
    """Count a duplicate as the local engine counts it (same reason, same excerpt)."""
    result = DocResult(row["id"], row["source"], row["bytes_in"], row["text"])
    reason, other, jaccard, containment = decision
    if reason == "exact_duplicate":
        result.mark_exact_duplicate(other)
    else:
        result.mark_near_duplicate(other, jaccard, containment)
    report.remove(result.reason, result.id, result.bytes_in, result.text)


def clean(in_dir: Path, out_dir: Path, scratch: Path, params: CleanParams,
          cleaner: DocumentCleaner) -> CleanReport:
    """Clean every block of in_dir into out_dir/part-<block>.parquet on Ray; the report of the whole stage."""
    tasks = block_tasks(in_dir, scratch)
    report = CleanReport(params.report_examples)
    with ray_session("clean", params.workers):
        totals = _reports(run_tasks(tasks, functools.partial(_pass1, cleaner, params)), report,
                          "clean", len(tasks))
        decide(tasks, params, totals.get("passed", 0), scratch)
        if params.line_dedupe.enabled and totals.get("units", 0):
            count_boilerplate(tasks, params, totals["units"], scratch)
        finish = functools.partial(_finish, params, str(scratch.absolute()), str(out_dir.absolute()))
        totals = _reports(run_tasks(tasks, finish), report, "write", len(tasks))
    report.docs_out, report.bytes_out = totals.get("docs_out", 0), totals.get("bytes_out", 0)
    return report
