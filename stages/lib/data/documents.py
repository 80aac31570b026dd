"""Documents between stages: Parquet parts with columns `id`, `source`, `text`.

Writers append row groups of bounded size and start a new part file past a
size limit, so a stage streams any corpus in bounded memory and DVC hashes a
few large files rather than many small ones. Readers yield record batches.

A stage writes its output in blocks (merge: a run of input files; clean and
pack: one input part), each block through its own writer, so blocks can be
written at the same time by different processes or nodes. Block b's parts
are `part-{b:05d}.parquet`, then `part-{b:05d}-{sub:03d}.parquet` (sub 1, 2,
...) past the size limit; readers take them in (block, sub) order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stages.lib.errors import UserError

SCHEMA = pa.schema([("id", pa.string()), ("source", pa.string()), ("text", pa.large_string())])
ROW_GROUP_BYTES = 8 << 20  # text buffered before a row group is written: readers hold one at a time
PART_BYTES = 1 << 30  # text in one part file before the next one starts
PART_NAME = re.compile(r"part-(\d{5,})(?:-(\d{3,}))?\.parquet")  # block, then sub (none: 0)


@dataclass
class Document:
    id: str
    source: str
    text: str


def part_path(directory: str | Path, block: int, sub: int = 0) -> Path:
    """Where part `sub` of block `block` goes: part-00007.parquet, then part-00007-001.parquet, ..."""
    name = f"part-{block:05d}.parquet" if sub == 0 else f"part-{block:05d}-{sub:03d}.parquet"
    return Path(directory) / name


class DocumentWriter:
    """Append block `block`'s documents to `out_dir/part_path(out_dir, block, sub)`, in row groups, rolling
    parts (sub 0, 1, ...) by size."""

    def __init__(self, out_dir: str | Path, block: int = 0, row_group_bytes: int = ROW_GROUP_BYTES,
                 part_bytes: int = PART_BYTES, compression: str = "zstd"):
        self.out_dir = Path(out_dir)
        self.block = block
        self.compression = compression  # "none" for scratch files read back at once: saves the CPU
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.row_group_bytes = row_group_bytes
        self.part_bytes = part_bytes
        self._columns: dict[str, list[str]] = {"id": [], "source": [], "text": []}
        self._buffered = 0
        self._part_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._sub = 0  # the block's part being written
        self.documents = 0
        self.bytes = 0  # UTF-8 bytes of text written

    def write(self, doc: Document) -> None:
        self._columns["id"].append(doc.id)
        self._columns["source"].append(doc.source)
        self._columns["text"].append(doc.text)
        self._buffered += len(doc.text)
        self.documents += 1
        self.bytes += len(doc.text.encode("utf-8"))
        if self._buffered >= self.row_group_bytes:
            self._flush()

    def write_table(self, table: pa.Table) -> None:
        """Append documents already in Arrow form (read from another document folder), in order."""
        self._flush()
        size = text_bytes(table)
        self.documents += table.num_rows
        self.bytes += size
        self._write(table.select(SCHEMA.names).cast(SCHEMA), size)

    def _flush(self) -> None:
        if not self._columns["id"]:
            return
        table = pa.table(self._columns, schema=SCHEMA)
        self._columns = {"id": [], "source": [], "text": []}
        size, self._buffered = self._buffered, 0
        self._write(table, size)

    def _write(self, table: pa.Table, size: int) -> None:
        if self._writer is None:
            path = part_path(self.out_dir, self.block, self._sub)
            self._writer = pq.ParquetWriter(path, SCHEMA, compression=self.compression)
        self._writer.write_table(table)
        self._part_written += size
        if self._part_written >= self.part_bytes:
            self._close_part()

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._sub += 1
            self._part_written = 0

    def close(self) -> None:
        self._flush()
        self._close_part()

    def __enter__(self) -> "DocumentWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def text_bytes(table: pa.Table) -> int:
    """UTF-8 bytes of a table's texts, counted by Arrow: no Python string is made."""
    return int(pc.sum(pc.binary_length(table.column("text"))).as_py() or 0)


def part_files(in_dir: str | Path) -> list[Path]:
    """The folder's part files in document order: by block, then sub, compared as numbers."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise UserError(f"{in_dir} not found: run the stage that produces it first (dvc repro)")
    parts = {}
    for path in in_dir.iterdir():
        if match := PART_NAME.fullmatch(path.name):
            parts[path] = (int(match.group(1)), int(match.group(2) or 0))
    return sorted(parts, key=parts.get)


def part_tables(path: str | Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """One part file's row groups, one at a time, in order.

    Bounded memory: a row group holds about ROW_GROUP_BYTES of text, where
    ParquetFile.iter_batches would join row groups to fill its batch size,
    which for long documents means hundreds of MB.
    """
    parquet = pq.ParquetFile(path)
    for index in range(parquet.num_row_groups):
        yield parquet.read_row_group(index, columns=columns)


def iter_tables(in_dir: str | Path) -> Iterator[pa.Table]:
    """One row group at a time, in a stable order (part file, then row group)."""
    for path in part_files(in_dir):
        yield from part_tables(path)


def iter_batches(in_dir: str | Path, batch_rows: int = 1024) -> Iterator[pa.RecordBatch]:
    """Record batches of documents in a stable order (part file, then row)."""
    for table in iter_tables(in_dir):
        yield from table.to_batches(max_chunksize=batch_rows)


def iter_documents(in_dir: str | Path, batch_rows: int = 1024) -> Iterator[Document]:
    for batch in iter_batches(in_dir, batch_rows):
        columns = batch.to_pydict()
        for doc_id, source, text in zip(columns["id"], columns["source"], columns["text"]):
            yield Document(doc_id, source, text)


def iter_texts(in_dir: str | Path, batch_rows: int = 1024) -> Iterator[str]:
    for batch in iter_batches(in_dir, batch_rows):
        yield from batch.column("text").to_pylist()
