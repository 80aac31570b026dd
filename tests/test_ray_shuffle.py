"""The pieces of the Ray clean engine's shuffles, on plain Arrow tables: no Ray instance needed."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("ray")

from stages.lib.engines.ray_clean import SKETCHES, _attach_labels, _exact, _shared  # noqa: E402
from stages.lib.engines.ray_shuffle import _relabel, group_min, partition_of  # noqa: E402


def test_group_min_gives_each_row_the_smallest_value_of_its_key():
    keys = np.array([7, 3, 7, 5, 3, 7])
    values = np.array([9, 4, 2, 8, 6, 5])
    assert group_min(keys, values).tolist() == [2, 4, 2, 8, 4, 2]
    assert group_min(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_equal_keys_share_a_partition_and_consecutive_indices_spread():
    parts = partition_of(np.arange(10_000), 8)
    assert set(parts.tolist()) == set(range(8)) and np.bincount(parts).min() > 1000
    assert (partition_of(np.array([42, 42, 42]), 8) == partition_of(np.array([42]), 8)[0]).all()


def test_exact_names_the_first_document_of_each_hash():
    table = pa.table({"index": [5, 2, 9, 3], "id": ["e", "b", "i", "c"],
                      "content_hash": pa.array([1, 1, 2, 1], pa.uint64()),
                      "signature": pa.nulls(4, pa.binary()), "shingles": [0, 0, 0, 0]})
    out = _exact(table).to_pydict()
    assert dict(zip(out["index"], out["other"])) == {2: None, 3: "b", 5: "b", 9: None}


def test_shared_keeps_keys_of_two_or_more_documents_labelled_with_their_smallest_index():
    table = pa.table({"key": pa.array([1, 1, 2, 3, 3, 3, 4, 4], pa.uint32()), "index": [8, 4, 6, 9, 7, 8, 5, 5]})
    out = _shared(table).to_pydict()
    rows = sorted(zip(out["key"], out["index"], out["label"]))
    # key 2: one document; key 4: one document twice (not shared)
    assert rows == [(1, 4, 4), (1, 8, 4), (3, 7, 7), (3, 8, 7), (3, 9, 7)]


def test_label_propagation_reaches_the_smallest_index_of_a_chain():
    """Chain 9 -a- 5 -b- 7 -c- 2: rounds of per-document then per-key minima give every member label 2."""
    rows = pa.table({"key": [1, 1, 2, 2, 3, 3], "index": [9, 5, 5, 7, 7, 2]})
    table = pa.table({"key": rows["key"], "index": rows["index"],
                      "label": group_min(rows["key"].to_numpy(), rows["index"].to_numpy())})
    for _ in range(4):
        table = _relabel("key", _relabel("index", table).drop_columns(["changed"]))
        changed = table["changed"].to_numpy().sum()
        table = table.drop_columns(["changed"])
    assert set(table["label"].to_pylist()) == {2} and changed == 0


def test_attach_labels_keeps_only_candidates_in_a_component():
    labels = pa.table({"index": [3, 3, 6], "label": [1, 2, 1], "id": pa.nulls(3, pa.string()),
                       "signature": pa.nulls(3, pa.binary()), "shingles": pa.nulls(3, pa.int64())}, schema=SKETCHES)
    sketches = pa.table({"index": [3, 4, 6], "label": pa.nulls(3, pa.int64()), "id": ["c", "d", "f"],
                         "signature": [b"x", b"y", b"z"], "shingles": [1, 2, 3]}, schema=SKETCHES)
    out = _attach_labels(pa.concat_tables([labels, sketches])).to_pydict()
    assert sorted(zip(out["index"], out["label"], out["id"])) == [(3, 1, "c"), (6, 1, "f")]
