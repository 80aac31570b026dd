"""Documents in Parquet parts: round trip, row groups, part rolling, blocks and their order, counters."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from stages.lib.data.documents import (
    Document,
    DocumentWriter,
    iter_documents,
    iter_tables,
    iter_texts,
    part_files,
    part_path,
)
from stages.lib.errors import UserError


def make_docs(n: int) -> list[Document]:
    texts = ["plain ascii", "café — naïve ☃", "emoji 😀 and 𝔘", "line\nbreaks\r\n\tand tabs", "", "中文 text"]
    return [Document(f"doc-{i:04d}", f"src/{i % 3}.txt", f"{i}: {texts[i % len(texts)]}") for i in range(n)]


def test_round_trip_single_part(tmp_path):
    docs = make_docs(12)
    with DocumentWriter(tmp_path / "out") as writer:
        for doc in docs:
            writer.write(doc)
    assert [p.name for p in part_files(tmp_path / "out")] == ["part-00000.parquet"]
    assert list(iter_documents(tmp_path / "out")) == docs
    assert list(iter_texts(tmp_path / "out")) == [d.text for d in docs]


def test_counters(tmp_path):
    docs = make_docs(20)
    with DocumentWriter(tmp_path / "out", row_group_bytes=40, part_bytes=100) as writer:
        for doc in docs:
            writer.write(doc)
    assert writer.documents == 20
    assert writer.bytes == sum(len(d.text.encode("utf-8")) for d in docs)
    assert writer.bytes > sum(len(d.text) for d in docs)  # non-ASCII text: bytes, not characters


def test_many_row_groups_and_parts_read_back_in_order(tmp_path):
    docs = make_docs(300)
    with DocumentWriter(tmp_path / "out", row_group_bytes=100, part_bytes=400) as writer:
        for doc in docs:
            writer.write(doc)
    parts = part_files(tmp_path / "out")
    assert len(parts) >= 3
    assert [p.name for p in parts] == ["part-00000.parquet"] + [f"part-00000-{i:03d}.parquet"
                                                                for i in range(1, len(parts))]
    row_groups = [pq.ParquetFile(p).num_row_groups for p in parts]
    assert max(row_groups) >= 2
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == len(docs)
    # Small reader batches cross row-group and part boundaries and keep the order.
    assert list(iter_documents(tmp_path / "out", batch_rows=7)) == docs
    assert list(iter_texts(tmp_path / "out", batch_rows=5)) == [d.text for d in docs]


def test_parts_roll_at_the_size_limit(tmp_path):
    # Each document is 10 characters; a row group holds 2 of them, a part 2 row groups.
    docs = [Document(str(i), "s", f"{i:010d}") for i in range(10)]
    with DocumentWriter(tmp_path / "out", row_group_bytes=20, part_bytes=40) as writer:
        for doc in docs:
            writer.write(doc)
    parts = part_files(tmp_path / "out")
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [4, 4, 2]
    assert [pq.ParquetFile(p).num_row_groups for p in parts] == [2, 2, 1]
    assert list(iter_documents(tmp_path / "out")) == docs


def test_part_names_by_block_and_sub(tmp_path):
    assert part_path(tmp_path, 0) == tmp_path / "part-00000.parquet"  # a corpus of one block: one name
    assert part_path(tmp_path, 7, 1).name == "part-00007-001.parquet"
    assert part_path(tmp_path, 123456, 1234).name == "part-123456-1234.parquet"


def test_blocks_written_in_any_order_read_back_by_block_then_sub(tmp_path):
    """Blocks are written by separate writers (processes, Ray tasks), each rolling its own parts."""
    docs = make_docs(60)
    blocks = {0: docs[:20], 2: docs[20:25], 10: docs[25:60]}  # a block without documents (1) writes nothing
    for block in (10, 0, 2):
        with DocumentWriter(tmp_path, block=block, row_group_bytes=50, part_bytes=100) as writer:
            for doc in blocks[block]:
                writer.write(doc)
    names = [p.name for p in part_files(tmp_path)]
    assert names[:2] == ["part-00000.parquet", "part-00000-001.parquet"]
    assert "part-00002.parquet" in names and "part-00010-001.parquet" in names
    assert names.index("part-00002.parquet") < names.index("part-00010.parquet")  # 10 after 2: as numbers
    assert list(iter_documents(tmp_path)) == docs


def test_part_files_sorts_as_numbers_and_ignores_other_names(tmp_path):
    names = ["part-00001.parquet", "part-00000-010.parquet", "part-00000-002.parquet", "part-00000.parquet",
             "part-100000.parquet", "part-99999.parquet", "part-00000-1000.parquet"]
    for name in names + ["part-1.parquet", "part-00000.parquet.tmp", "other.parquet", "part-00000-01.parquet"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in part_files(tmp_path)] == [
        "part-00000.parquet", "part-00000-002.parquet", "part-00000-010.parquet", "part-00000-1000.parquet",
        "part-00001.parquet", "part-99999.parquet", "part-100000.parquet"]


def test_no_documents_gives_no_parts(tmp_path):
    with DocumentWriter(tmp_path / "out") as writer:
        pass
    assert writer.documents == 0 and writer.bytes == 0
    assert part_files(tmp_path / "out") == []
    assert list(iter_documents(tmp_path / "out")) == []


def test_reading_a_missing_folder_raises(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError, match="nope"):
        list(iter_documents(missing))
    with pytest.raises(UserError, match="nope"):
        list(iter_texts(missing))


def test_write_table_keeps_order_and_counts(tmp_path):
    source = tmp_path / "source"
    with DocumentWriter(source) as writer:
        for i in range(3):
            writer.write(Document(f"t{i}", "s", f"table text {i} é"))
    (table,) = list(iter_tables(source))
    out = tmp_path / "out"
    with DocumentWriter(out) as writer:
        writer.write(Document("first", "s", "before"))
        writer.write_table(table)
        writer.write(Document("last", "s", "after"))
    docs = list(iter_documents(out))
    assert [d.id for d in docs] == ["first", "t0", "t1", "t2", "last"]
    assert writer.documents == 5
    assert writer.bytes == sum(len(d.text.encode("utf-8")) for d in docs)
