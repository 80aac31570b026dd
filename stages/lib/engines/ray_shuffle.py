"""Shuffles on Ray Data that hand a function every row sharing a key at once, and connected components.

`by_key(dataset, key, partitions, fn)`: each row goes to partition
hash(key) % partitions, and fn gets a whole partition as one Arrow table, so
every row of a key value is in one call (with the rows of other values) and
fn works on it with numpy, not with a Python call per group. A partition
holds about rows / partitions rows: `partitions_for(rows)` sizes it so that a
task's memory is set by ROWS_PER_PARTITION, not by the corpus.

`component_labels(members)`: documents that share a key are connected; each
gets the smallest document index it is connected to, by min-label
propagation: starting from the smallest index under each key, a round takes
the smallest label over each document's rows, then over each key's rows, until
a round changes nothing (as many rounds as the
longest chain of shared keys, two or three for near-duplicate clusters).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import ray
import ray.data

from stages.lib.data.near_dedupe import _mix64
from stages.lib.engines.ray_session import map_tables

ROWS_PER_PARTITION = 1 << 21  # ~2M rows of a few numbers each: ~50 MB per task
PART = "_partition"


def partitions_for(rows: int) -> int:
    """Enough partitions to keep each under ROWS_PER_PARTITION rows, and at least one per CPU of the cluster."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(cpus, -(-rows // ROWS_PER_PARTITION), 1)


def partition_of(values: np.ndarray, partitions: int) -> np.ndarray:
    """A well-spread partition number per value (document indices are consecutive, hashes are not)."""
    mixed = _mix64(np.asarray(values).astype(np.uint64))
    return (mixed % np.uint64(partitions)).astype(np.int64)


def by_key(dataset: ray.data.Dataset, key: str, partitions: int,
           fn: Callable[[pa.Table], pa.Table]) -> ray.data.Dataset:
    """fn over each hash partition of `key`: all rows with the same key value reach the same call."""
    def tag(table: pa.Table) -> pa.Table:
        return table.append_column(PART, pa.array(partition_of(table[key].to_numpy(), partitions)))

    def run(table: pa.Table) -> pa.Table:
        return fn(table.drop_columns([PART]))

    return (map_tables(dataset, tag).groupby(PART, num_partitions=partitions)
            .map_groups(run, batch_format="pyarrow"))


def group_min(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the smallest value among the rows with its key."""
    if len(keys) == 0:
        return values.copy()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    smallest = np.minimum.reduceat(values[order], starts)
    out = np.empty_like(values)
    out[order] = np.repeat(smallest, np.diff(np.r_[starts, len(keys)]))
    return out


def _relabel(column: str, table: pa.Table) -> pa.Table:
    """Each row's label becomes the smallest label of its `column` value; `changed` marks the rows lowered."""
    labels = table["label"].to_numpy()
    lowest = group_min(table[column].to_numpy(), labels)
    return pa.table({"key": table["key"], "index": table["index"], "label": lowest,
                     "changed": (lowest != labels).astype(np.int64)})


def component_labels(members: ray.data.Dataset, partitions: int) -> ray.data.Dataset:
    """members: rows (key, index, label), each key held by two or more documents, label the smallest index
    under the key. Returns the rows with label = the smallest index connected to `index` through shared keys."""
    labels = members
    while True:
        per_doc = by_key(labels, "index", partitions, lambda t: _relabel("index", t))
        labels = by_key(per_doc, "key", partitions, lambda t: _relabel("key", t)).materialize()
        if not labels.sum("changed"):  # None when there are no rows
            return labels
