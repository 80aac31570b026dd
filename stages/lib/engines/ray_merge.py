"""merge on Ray Data: input files are read by `read_file`, as the local engine reads them, in Ray tasks.

Files are grouped into tasks of about TASK_BYTES (a task per file cost ~20 ms
of Ray overhead each: 4,000 files of 50 KB took 78 s instead of 2 s).

A task yields its file's documents in row groups of about ROW_GROUP_BYTES,
then one row holding the file's SourceStats (pickled): the driver writes the
documents in file order through the stage's DocumentWriter, and adds the
stats up in the same order, so documents, metrics and warnings come out as
the local engine writes them.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from stages.lib.data.documents import ROW_GROUP_BYTES, Document
from stages.lib.data.sources import SourceStats, read_file, relative_name
from stages.lib.engines.ray_session import map_tasks, ray_session, stream
from stages.lib.params import MergeParams

SCHEMA = pa.schema([("id", pa.string()), ("source", pa.string()), ("text", pa.large_string()),
                    ("stats", pa.binary())])  # stats: null on document rows, set on each file's last row
TASK_BYTES = 32 << 20  # input bytes (as stored) read per task


def _table(docs: list[Document], stats: SourceStats | None = None) -> pa.Table:
    rows = {"id": [d.id for d in docs], "source": [d.source for d in docs], "text": [d.text for d in docs],
            "stats": [None] * len(docs)}
    if stats is not None:
        for name in ("id", "source", "text"):
            rows[name].append(None)
        rows["stats"].append(pickle.dumps(stats))
    return pa.table(rows, schema=SCHEMA)


def _read(params: MergeParams, task: dict) -> Iterator[pa.Table]:
    """Each file's documents, a row group at a time, then its stats."""
    for path, rel in zip(task["paths"], task["rels"]):
        stats, docs, size = SourceStats(), [], 0
        for doc in read_file(Path(path), rel, params, stats):
            docs.append(doc)
            size += len(doc.text)
            if size >= ROW_GROUP_BYTES:
                yield _table(docs)
                docs, size = [], 0
        yield _table(docs, stats)


def file_tasks(files: list[Path], rels: list[str]) -> list[dict]:
    """Consecutive files grouped into tasks of about TASK_BYTES on disk, in file order."""
    tasks, size = [], TASK_BYTES
    for path, rel in zip(files, rels):
        if size >= TASK_BYTES:
            tasks.append({"paths": [], "rels": []})
            size = 0
        # absolute(), not resolve(): a broken symbolic link must stay one for read_file to count it.
        tasks[-1]["paths"].append(str(path.absolute()))
        tasks[-1]["rels"].append(rel)
        size += path.lstat().st_size
    return tasks


def read_documents(files: list[Path], input_dir: Path, params: MergeParams, stats: SourceStats) -> Iterator[Document]:
    """The documents of every file in file order; each file's counts are added to `stats`."""
    rels = [relative_name(path, input_dir, stats) for path in files]
    with ray_session("merge"):
        read = map_tasks(file_tasks(files, rels), lambda task: _read(params, task))
        for table in stream(read):
            columns = table.to_pydict()
            for doc_id, source, text, file_stats in zip(columns["id"], columns["source"], columns["text"],
                                                        columns["stats"]):
                if file_stats is not None:
                    stats.add(pickle.loads(file_stats))
                else:
                    yield Document(doc_id, source, text)
