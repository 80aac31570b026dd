"""pack on Ray: each clean part file is a Ray task that tokenizes it and writes its own shards.

A task reads its part a row group at a time (bounded memory), routes each
document to train or val and encodes each split with `packing.split_of` and
`packing.encode`, the local engine's functions, and writes the block's shards
through `BlockShards` into the stage's output folder (an absolute path: on a
cluster, a shared filesystem). It returns one row, the block's PackCounts
(pickled): the driver sees no tokens. Shards do not depend on the batching,
so they are byte for byte the local engine's.
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Iterator

import pyarrow as pa
from tqdm import tqdm

from stages.lib.data.documents import part_tables
from stages.lib.data.pack_block import BlockShards, PackCounts
from stages.lib.data.packing import SPLITS, encode, split_of
from stages.lib.engines.ray_session import ray_session, run_tasks
from stages.lib.params import PackParams
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer


@functools.lru_cache(maxsize=1)
def _tokenizer(path: str) -> Tokenizer:
    """Loaded once per worker process, not once per task."""
    return load_tokenizer(Path(path))


def _write(tokenizer_dir: str, out_dir: str, params: PackParams, task: dict) -> Iterator[pa.Table]:
    tok = _tokenizer(tokenizer_dir)
    shards = BlockShards(Path(out_dir), task["block"], tok.vocab_size, params.shard_tokens)
    for table in part_tables(task["path"], columns=["id", "text"]):
        texts: dict[str, list[str]] = {split: [] for split in SPLITS}
        for doc_id, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist()):
            texts[split_of(doc_id, params)].append(text)
        shards.write({split: encode(tok, texts[split]) for split in SPLITS})
    yield pa.table({"counts": pa.array([pickle.dumps(shards.close())], pa.binary())})


def write_shards(parts: list[Path], tokenizer_dir: Path, out_dir: Path, params: PackParams) -> PackCounts:
    """Each part file (block b: the b-th) as its own shards in out_dir, a Ray task each; the blocks' counts
    added up in order."""
    tasks = [{"path": str(part.absolute()), "block": block} for block, part in enumerate(parts)]
    tokenizer, out = str(tokenizer_dir.absolute()), str(out_dir.absolute())
    total = PackCounts()
    if not tasks:  # (no clean documents: the stage says which split is empty)
        return total
    with ray_session("pack"), tqdm(total=len(tasks), desc="pack", unit="part") as progress:
        for table in run_tasks(tasks, lambda task: _write(tokenizer, out, params, task)):
            for counts in table.column("counts").to_pylist():
                total.add(pickle.loads(counts))
                progress.update()
    return total
