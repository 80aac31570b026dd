"""clean on Ray Data: the local engine's per-document work in map_batches, its decisions by groupby.

The local engine (local_clean.py) decides duplicates in one process, in
document order. Here no step gathers the documents on one node; every
document keeps its global `index` (its position in data/interim/merged), so
"first in document order" means what it means there, and the decisions come
out the same:

1. clean: `DocumentCleaner.clean_batch`, the local engine's function, over one
   row group per task; the results (text, reason, hashes, sketch) stay in
   Ray's object store (spilled to local disk when larger than memory).
2. exact duplicates: among documents that passed the filters, groupby content
   hash (count, smallest index). Every document of a hash held twice or more
   but the first is a duplicate; only those hashes reach the driver.
3. near duplicates: band keys of the remaining sketches, groupby key (count).
   A document none of whose keys is shared is kept and matches nobody, as in
   the local engine; the others, a sparse set, come to the driver as sketches
   (512 B each, no text) in document order and go through the local engine's
   NearDuplicateIndex. Its rule (a document is dropped when the first kept
   document under one of its keys is similar enough) only ever looks at
   documents that share a key, so it makes the same decisions.
4. boilerplate: distinct long units of the kept documents, groupby hash
   (count >= min_docs); the table goes to the caller's LineFrequency.
5. every result streams to the driver in document order with its reason, and
   the stage writes them as it writes the local engine's, so the bytes are the same.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data
from ray.data.aggregate import Count, Min

from stages.lib.data.cleaning import DocResult, DocumentCleaner
from stages.lib.data.line_dedupe import LineFrequency
from stages.lib.data.near_dedupe import NearDuplicateIndex, Sketch
from stages.lib.engines.ray_session import map_tables, map_tasks, ray_session, read_row_group, row_group_tasks, stream
from stages.lib.params import CleanParams, NearDedupeParams

RESULTS = pa.schema([("index", pa.int64()), ("id", pa.string()), ("source", pa.string()),
                     ("text", pa.large_string()), ("bytes_in", pa.int64()), ("reason", pa.string()),
                     ("pii", pa.string()), ("content_hash", pa.uint64()), ("signature", pa.binary()),
                     ("shingles", pa.int64()), ("unit_hashes", pa.list_(pa.uint64()))])
MAX_PARTITIONS = 64  # groupby partitions: one per input row group, up to this


# --------------------------------------------------------------------------- 1. per-document work

def _clean(cleaner: DocumentCleaner, task: dict) -> Iterator[pa.Table]:
    docs = read_row_group(task).to_pydict()
    results = cleaner.clean_batch(list(zip(docs["id"], docs["source"], docs["text"])))
    yield pa.table({
        "index": docs["index"],
        "id": [r.id for r in results], "source": [r.source for r in results], "text": [r.text for r in results],
        "bytes_in": [r.bytes_in for r in results], "reason": [r.reason for r in results],
        "pii": [json.dumps(r.pii) for r in results],  # a dict, in the order the scrubber counted
        "content_hash": [r.content_hash for r in results],
        "signature": [None if r.signature is None else r.signature.signature.tobytes() for r in results],
        "shingles": [0 if r.signature is None else r.signature.shingles for r in results],
        "unit_hashes": [None if r.unit_hashes is None else r.unit_hashes.tolist() for r in results],
    }, schema=RESULTS)


def _lists(column: pa.Array) -> list[np.ndarray]:
    """A list<uint64> column as one numpy array per row, without a Python int per element."""
    values = column.values.to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy()
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]


# --------------------------------------------------------------------------- 2. exact duplicates

class Decisions:
    """What the groupbys decided, small enough for the driver and every task: duplicated content
    hashes with the index of their first document, and the near duplicates."""

    def __init__(self, exact: pa.Table | None = None):
        exact = exact if exact is not None else pa.table({"hash": pa.array([], pa.uint64()), "first": []})
        order = np.argsort(exact["hash"].to_numpy())
        self.hashes = exact["hash"].to_numpy()[order]
        self.first = np.asarray(exact["first"].to_numpy(), np.int64)[order]
        self.near: dict[int, tuple[str, float, float]] = {}  # index -> (similar id, Jaccard, containment)
        self.near_indices = np.zeros(0, np.int64)  # sorted, for the tasks

    def exact_duplicate(self, batch: pa.Table) -> np.ndarray:
        """Mask: documents that passed the filters whose text an earlier one has."""
        hashes, index = batch["content_hash"].to_numpy(), batch["index"].to_numpy()
        if len(self.hashes) == 0:
            return np.zeros(len(index), bool)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return passed(batch) & (self.hashes[at] == hashes) & (self.first[at] != index)

    def first_index(self, batch: pa.Table) -> np.ndarray:
        """Per document, the index of the first document with its text when that text is held twice or more;
        -1 otherwise."""
        if len(self.hashes) == 0:
            return np.full(batch.num_rows, -1, np.int64)
        hashes = batch["content_hash"].to_numpy()
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return np.where(passed(batch) & (self.hashes[at] == hashes), self.first[at], -1)

    def kept(self, batch: pa.Table) -> np.ndarray:
        """Mask: documents that survive the filters and both dedupe steps."""
        return (passed(batch) & ~self.exact_duplicate(batch)
                & ~np.isin(batch["index"].to_numpy(), self.near_indices))


def passed(batch: pa.Table) -> np.ndarray:
    """Mask: documents no filter removed."""
    return pc.is_null(batch["reason"]).to_numpy(zero_copy_only=False)


def exact_duplicates(results: ray.data.Dataset, partitions: int) -> Decisions:
    """groupby content hash over the documents that passed the filters; hashes held twice or more."""
    hashes = map_tables(results, lambda b: b.filter(passed(b)).select(["content_hash", "index"]))
    groups = hashes.groupby("content_hash", num_partitions=partitions).aggregate(
        Count(alias_name="docs"), Min("index", alias_name="first"))
    repeated = map_tables(groups, lambda g: g.filter(pc.greater_equal(g["docs"], 2)))
    tables = list(stream(repeated))
    if not tables or sum(t.num_rows for t in tables) == 0:
        return Decisions()
    table = pa.concat_tables(tables)
    return Decisions(pa.table({"hash": table["content_hash"], "first": table["first"]}))


# --------------------------------------------------------------------------- 3. near duplicates

def _band_keys(index: NearDuplicateIndex, decisions: Decisions, batch: pa.Table) -> tuple[np.ndarray, list]:
    """Rows of the batch that take part in near dedupe, and each one's band keys."""
    eligible = np.flatnonzero(passed(batch) & ~decisions.exact_duplicate(batch)
                              & ~pc.is_null(batch["signature"]).to_numpy(zero_copy_only=False))
    signatures = batch["signature"].to_pylist()
    return eligible, [index.band_keys(np.frombuffer(signatures[i], np.uint16)) for i in eligible]


def _key_rows(near: NearDedupeParams, decisions: Decisions, batch: pa.Table) -> pa.Table:
    rows, keys = _band_keys(NearDuplicateIndex.from_params(near), decisions, batch)
    index = batch["index"].to_numpy()[rows]
    return pa.table({"key": np.concatenate(keys) if keys else np.zeros(0, np.uint32),
                     "index": np.repeat(index, [len(k) for k in keys]).astype(np.int64)})


def _sharing(near: NearDedupeParams, decisions: Decisions, shared: np.ndarray, batch: pa.Table) -> pa.Table:
    """The sketches of the documents that hold a shared band key (the only ones near dedupe can drop)."""
    rows, keys = _band_keys(NearDuplicateIndex.from_params(near), decisions, batch)
    rows = rows[[bool(np.isin(k, shared).any()) for k in keys]] if len(rows) else rows
    return batch.take(pa.array(rows, pa.int64())).select(["index", "id", "signature", "shingles"])


def near_duplicates(results: ray.data.Dataset, near: NearDedupeParams, decisions: Decisions,
                    partitions: int) -> None:
    """groupby band key; the documents sharing one are resolved on the driver in document order."""
    pairs = map_tables(results, lambda b: _key_rows(near, decisions, b))
    counts = pairs.groupby("key", num_partitions=partitions).aggregate(Count(alias_name="docs"))
    shared = [t.filter(pc.greater_equal(t["docs"], 2))["key"].to_numpy() for t in stream(counts)]
    shared = np.unique(np.concatenate(shared)) if shared else np.zeros(0, np.uint32)
    if len(shared) == 0:
        return
    index = NearDuplicateIndex.from_params(near)
    sketches = map_tables(results, lambda b: _sharing(near, decisions, shared, b))
    for table in stream(sketches):
        cols = table.to_pydict()
        for doc, doc_id, signature, shingles in zip(cols["index"], cols["id"], cols["signature"], cols["shingles"]):
            match = index.add_or_match(doc_id, Sketch(np.frombuffer(signature, np.uint16), shingles))
            if match is not None:
                decisions.near[doc] = match
    decisions.near_indices = np.array(sorted(decisions.near), np.int64)


# --------------------------------------------------------------------------- 4. boilerplate

def _kept_units(decisions: Decisions, batch: pa.Table) -> pa.Table:
    kept = batch.filter(decisions.kept(batch))
    return pa.table({"unit": kept["unit_hashes"].combine_chunks().flatten()
                     if kept.num_rows else pa.array([], pa.uint64())})


def boilerplate(results: ray.data.Dataset, decisions: Decisions, min_docs: int, partitions: int) -> np.ndarray:
    """groupby unit hash over the kept documents: the units found in at least min_docs of them."""
    units = map_tables(results, lambda b: _kept_units(decisions, b))
    counts = units.groupby("unit", num_partitions=partitions).aggregate(Count(alias_name="docs"))
    found = [t.filter(pc.greater_equal(t["docs"], min_docs))["unit"].to_numpy() for t in stream(counts)]
    return np.concatenate(found) if found else np.zeros(0, np.uint64)


# --------------------------------------------------------------------------- 5. results in order

def _doc_results(table: pa.Table, params: CleanParams, decisions: Decisions,
                 kept_ids: dict[int, str]) -> Iterator[DocResult]:
    """The table's results in order; kept_ids (index -> id of a kept copy) names the copy an exact duplicate
    repeats: the first copy comes earlier in document order, so it is recorded before its duplicates."""
    exact = decisions.exact_duplicate(table) if params.exact_dedupe else np.zeros(table.num_rows, bool)
    first = decisions.first_index(table)
    units = _lists(table["unit_hashes"].combine_chunks())
    cols = table.select(["index", "id", "source", "bytes_in", "text", "reason", "pii"]).to_pydict()
    for i, doc in enumerate(cols["index"]):
        result = DocResult(cols["id"][i], cols["source"][i], cols["bytes_in"][i], cols["text"][i],
                           cols["reason"][i], json.loads(cols["pii"][i]), unit_hashes=units[i])
        if first[i] == doc:
            kept_ids[doc] = result.id
        if exact[i]:
            result.mark_exact_duplicate(kept_ids[int(first[i])])
        elif doc in decisions.near:
            result.mark_near_duplicate(*decisions.near[doc])
        yield result


def cleaned(in_dir: Path, params: CleanParams, cleaner: DocumentCleaner,
            line_counts: LineFrequency | None) -> Iterator[DocResult]:
    """Every document's DocResult in document order, duplicates marked as the local engine marks them.

    Before the first result, line_counts (if any) is given the boilerplate units the groupby found.
    """
    tasks = row_group_tasks(in_dir)
    partitions = max(1, min(len(tasks), MAX_PARTITIONS))
    with ray_session("clean", params.workers):
        results = map_tasks(tasks, lambda task: _clean(cleaner, task)).materialize()
        decisions = exact_duplicates(results, partitions) if params.exact_dedupe else Decisions()
        if params.near_dedupe.enabled:
            near_duplicates(results, params.near_dedupe, decisions, partitions)
        if line_counts is not None:
            line_counts.set_boilerplate(boilerplate(results, decisions, params.line_dedupe.min_docs, partitions))
        kept_ids: dict[int, str] = {}
        for table in stream(results):
            yield from _doc_results(table, params, decisions, kept_ids)
