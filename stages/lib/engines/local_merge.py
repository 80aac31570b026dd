"""merge on this machine: each block of input files is written by `write_block`, blocks side by side in a
process pool (one per core, no more than there are blocks: a corpus of one block is read in this process).

Every block writes its own part files, so the pool changes neither the files
nor the counts, which are added up in block order.
"""
from __future__ import annotations

import functools
from pathlib import Path

from tqdm import tqdm

from stages.lib.data.parallel import ordered_map, resolve_workers
from stages.lib.data.sources import FileBlock, SourceStats, write_block
from stages.lib.params import MergeParams


def write_blocks(blocks: list[FileBlock], out_dir: Path, params: MergeParams) -> SourceStats:
    """Write every block into out_dir; the blocks' counts added up in block order."""
    total = SourceStats()
    workers = min(len(blocks), resolve_workers(0))
    with tqdm(total=sum(len(block.paths) for block in blocks), desc="merge", unit="file") as progress:
        for block, stats in zip(blocks, ordered_map(functools.partial(write_block, params=params, out_dir=out_dir),
                                                    blocks, workers)):
            total.add(stats)
            progress.update(len(block.paths))
    return total
