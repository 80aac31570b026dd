"""merge on Ray: each block of input files is a Ray task that writes its own part files.

A task runs `write_block`, the local engine's function, into the stage's
output folder (an absolute path: on a cluster, a shared filesystem) and
returns one row, the block's SourceStats (pickled). The driver sees no
document text: it adds the counts up in block order, so files, metrics and
warnings come out as the local engine writes them.
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from stages.lib.data.sources import FileBlock, SourceStats, write_block
from stages.lib.engines.ray_session import ray_session, run_tasks
from stages.lib.params import MergeParams


def _write(params: MergeParams, out_dir: str, task: dict) -> Iterator[pa.Table]:
    stats = write_block(FileBlock(**task), params, Path(out_dir))
    yield pa.table({"stats": pa.array([pickle.dumps(stats)], pa.binary())})


def write_blocks(blocks: list[FileBlock], out_dir: Path, params: MergeParams) -> SourceStats:
    """Write every block into out_dir, a Ray task each; the blocks' counts added up in block order."""
    total = SourceStats()
    out = str(out_dir.absolute())
    with ray_session("merge"):
        tasks = [dataclasses.asdict(block) for block in blocks]
        for table in run_tasks(tasks, lambda task: _write(params, out, task)):
            for stats in table.column("stats").to_pylist():
                total.add(pickle.loads(stats))
    return total
