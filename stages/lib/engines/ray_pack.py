"""pack on Ray Data: each row group of the clean documents is split and tokenized in its own task.

A task routes its documents to train or val and encodes each split with
`packing.split_of` and `packing.encode`, the local engine's functions. The
tokens come back to the driver in document order and go through the stage's
ShardWriters, whose output does not depend on the batching, so the shards
are byte for byte the local engine's.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from stages.lib.data.packing import SPLITS, Encoded, encode, split_of
from stages.lib.engines.ray_session import map_tasks, ray_session, read_row_group, row_group_tasks, stream
from stages.lib.params import PackParams
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer


@functools.lru_cache(maxsize=1)
def _tokenizer(path: str) -> Tokenizer:
    """Loaded once per worker process, not once per task."""
    return load_tokenizer(Path(path))


def _encode(tokenizer_dir: str, params: PackParams, task: dict) -> Iterator[pa.Table]:
    """One row per split: its tokens (uint32: any vocabulary fits), document lengths and counts."""
    docs = read_row_group(task).to_pydict()
    texts: dict[str, list[str]] = {split: [] for split in SPLITS}
    for doc_id, text in zip(docs["id"], docs["text"]):
        texts[split_of(doc_id, params)].append(text)
    encoded = {split: encode(_tokenizer(tokenizer_dir), texts[split]) for split in SPLITS}
    yield pa.table({"split": list(SPLITS),
                    "tokens": [encoded[s].flat.astype(np.uint32).tobytes() for s in SPLITS],
                    "lengths": [encoded[s].lengths.tobytes() for s in SPLITS],
                    "text_bytes": [encoded[s].text_bytes for s in SPLITS],
                    "unknown": [encoded[s].unknown for s in SPLITS]})


def encoded_batches(in_dir: Path, tokenizer_dir: Path, params: PackParams) -> Iterator[dict[str, Encoded]]:
    """Per row group of the clean documents, in order: each split's Encoded."""
    tasks = row_group_tasks(in_dir)
    tokenizer = str(tokenizer_dir.absolute())
    with ray_session("pack"):
        encoded = map_tasks(tasks, lambda task: _encode(tokenizer, params, task))
        for table in stream(encoded):
            rows = table.to_pylist()
            for first in range(0, len(rows), len(SPLITS)):  # a task's rows: train, then val
                yield {row["split"]: _encoded(row) for row in rows[first:first + len(SPLITS)]}


def _encoded(row: dict) -> Encoded:
    return Encoded(np.frombuffer(row["tokens"], np.uint32), np.frombuffer(row["lengths"], np.int64),
                   row["text_bytes"], row["unknown"])
