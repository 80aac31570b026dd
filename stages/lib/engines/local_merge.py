"""merge on this machine: input files are read one after another, in file order, in this process."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from stages.lib.data.documents import Document
from stages.lib.data.sources import SourceStats, read_file, relative_name
from stages.lib.params import MergeParams


def read_documents(files: list[Path], input_dir: Path, params: MergeParams, stats: SourceStats) -> Iterator[Document]:
    """The documents of every file in file order; each file's counts are added to `stats`."""
    for path in tqdm(files, desc="merge", unit="file"):
        yield from read_file(path, relative_name(path, input_dir, stats), params, stats)
