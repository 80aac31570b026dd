"""Token shards: round trip, shard boundaries at document ends, names and order of blocks, dtypes, header,
damaged files."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from stages.lib.data.shards import (
    HEADER_BYTES,
    MAGIC,
    VERSION,
    ShardWriter,
    open_tokens,
    read_header,
    shard_path,
    shard_paths,
    token_dtype,
)
from stages.lib.errors import UserError


def random_documents(rng: np.random.Generator, n_docs: int, vocab: int, eot: int = 0, max_len: int = 20):
    """Flat tokens and lengths of documents that each end with the end-of-text token."""
    lengths = rng.integers(1, max_len + 1, size=n_docs)
    docs = [np.append(rng.integers(1, vocab, size=n - 1), eot) for n in lengths]
    return np.concatenate(docs).astype(np.int64), lengths.astype(np.int64)


def write(directory, batches, vocab: int, shard_tokens: int, split: str = "train", block: int = 0) -> ShardWriter:
    writer = ShardWriter(directory, split, vocab, shard_tokens, block=block)
    for tokens, lengths in batches:
        writer.write_documents(tokens, lengths)
    writer.close()
    return writer


def test_round_trip_across_shards_ending_at_document_ends(tmp_path):
    rng = np.random.default_rng(0)
    batches = [random_documents(rng, n, vocab=500) for n in (7, 1, 30, 12)]  # several write calls
    shard_tokens = 25
    writer = write(tmp_path, batches, vocab=500, shard_tokens=shard_tokens)

    all_tokens = np.concatenate([t for t, _ in batches])
    all_lengths = np.concatenate([n for _, n in batches])
    doc_ends = set(np.cumsum(all_lengths).tolist())

    paths = shard_paths(tmp_path, "train")
    assert len(paths) >= 3
    assert [p.name for p in paths] == ["train-00000.bin"] + [f"train-00000-{i:03d}.bin" for i in range(1, len(paths))]
    assert writer.shards == len(paths)
    assert writer.total_tokens == len(all_tokens) and writer.total_documents == len(all_lengths)

    shards = [np.asarray(open_tokens(p)) for p in paths]
    np.testing.assert_array_equal(np.concatenate(shards), all_tokens)

    start, n_docs = 0, 0
    for i, (path, shard) in enumerate(zip(paths, shards)):
        ends = np.load(path.with_name(path.name.replace(".bin", ".docs.npy")))
        assert ends.dtype == np.int64
        assert ends[-1] == len(shard)  # the shard ends at a document end
        assert (np.diff(ends) > 0).all()
        assert {start + int(e) for e in ends} <= doc_ends  # every offset is a document end
        n_docs += len(ends)
        if i < len(paths) - 1:
            # Closed at the first document end at or past shard_tokens, not later.
            assert len(shard) >= shard_tokens
            assert len(ends) == 1 or ends[-2] < shard_tokens
        start += len(shard)
    assert n_docs == len(all_lengths)


def test_document_longer_than_a_shard_stays_whole(tmp_path):
    tokens = np.arange(1, 131, dtype=np.int64)
    lengths = np.array([10, 100, 20])
    write(tmp_path, [(tokens, lengths)], vocab=200, shard_tokens=25)
    paths = shard_paths(tmp_path, "train")
    sizes = [read_header(p).n_tokens for p in paths]
    assert sizes == [110, 20]  # 10 < 25, so the 100-token document joins the first shard
    np.testing.assert_array_equal(np.load(tmp_path / "train-00000.docs.npy"), [10, 110])
    np.testing.assert_array_equal(np.load(tmp_path / "train-00000-001.docs.npy"), [20])


def test_shard_ending_exactly_at_the_limit(tmp_path):
    write(tmp_path, [(np.arange(1, 31), np.array([10, 15, 5]))], vocab=100, shard_tokens=25)
    assert [read_header(p).n_tokens for p in shard_paths(tmp_path, "train")] == [25, 5]


def test_no_documents_no_shards(tmp_path):
    writer = write(tmp_path, [(np.array([], dtype=np.int64), np.array([], dtype=np.int64))], vocab=100,
                   shard_tokens=10)
    assert shard_paths(tmp_path, "train") == [] and writer.shards == 0


@pytest.mark.parametrize("vocab, dtype, top", [(256, np.uint16, 255), (65536, np.uint16, 65535),
                                               (65537, np.uint32, 65536), (200_000, np.uint32, 199_999)])
def test_dtype_by_vocab_size(tmp_path, vocab, dtype, top):
    assert token_dtype(vocab) == np.dtype(dtype)
    tokens = np.array([0, 1, top, 7, top], dtype=np.int64)
    write(tmp_path, [(tokens, np.array([3, 2]))], vocab=vocab, shard_tokens=100)
    (path,) = shard_paths(tmp_path, "train")
    info = read_header(path)
    assert info.dtype == np.dtype(dtype) and info.vocab_size == vocab and info.n_tokens == 5
    assert path.stat().st_size == HEADER_BYTES + 5 * np.dtype(dtype).itemsize
    read = open_tokens(path)
    assert read.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(read, tokens)  # ids above 65535 survive with uint32


def test_header_fields(tmp_path):
    write(tmp_path, [(np.arange(1, 11), np.array([4, 6]))], vocab=1000, shard_tokens=100, split="val")
    (path,) = shard_paths(tmp_path, "val")
    raw = path.read_bytes()
    magic, version, itemsize, count, vocab, reserved = struct.unpack("<8sIIQII", raw[:32])
    assert (magic, version, itemsize, count, vocab, reserved) == (MAGIC, VERSION, 2, 10, 1000, 0)
    assert magic == b"LMSHARD1" and version == 1
    np.testing.assert_array_equal(np.frombuffer(raw[32:], dtype="<u2"), np.arange(1, 11))


def test_open_tokens_is_read_only(tmp_path):
    write(tmp_path, [(np.arange(1, 5), np.array([4]))], vocab=100, shard_tokens=100)
    tokens = open_tokens(shard_paths(tmp_path, "train")[0])
    with pytest.raises(ValueError):
        tokens[0] = 9


def test_shard_paths_selects_the_split(tmp_path):
    for name in ["train-00001.bin", "train-00000.bin", "train-00000.docs.npy", "val-00000.bin",
                 "train-0000.bin", "train-00000.bin.tmp", "xtrain-00000.bin", "train-00000-01.bin"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in shard_paths(tmp_path, "train")] == ["train-00000.bin", "train-00001.bin"]
    assert [p.name for p in shard_paths(tmp_path, "val")] == ["val-00000.bin"]
    assert shard_paths(tmp_path / "missing", "train") == []


def test_shard_names_by_block_and_sub(tmp_path):
    assert shard_path(tmp_path, "train", 0) == tmp_path / "train-00000.bin"  # a corpus of one block: one name
    assert shard_path(tmp_path, "val", 7, 1, ".docs.npy").name == "val-00007-001.docs.npy"
    assert shard_path(tmp_path, "val", 123456, 1234).name == "val-123456-1234.bin"


def test_shard_paths_sort_by_block_then_sub_as_numbers(tmp_path):
    names = ["train-00001.bin", "train-00000-010.bin", "train-00000-002.bin", "train-00000.bin",
             "train-100000.bin", "train-99999.bin", "train-00000-1000.bin"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in shard_paths(tmp_path, "train")] == [
        "train-00000.bin", "train-00000-002.bin", "train-00000-010.bin", "train-00000-1000.bin",
        "train-00001.bin", "train-99999.bin", "train-100000.bin"]


def test_blocks_written_by_separate_writers_read_back_in_block_order(tmp_path):
    rng = np.random.default_rng(1)
    blocks = {block: [random_documents(rng, 20, vocab=300)] for block in (0, 1, 12)}
    for block in (12, 0, 1):  # the order blocks finish in does not matter
        write(tmp_path, blocks[block], vocab=300, shard_tokens=60, block=block)
    paths = shard_paths(tmp_path, "train")
    names = [p.name for p in paths]
    assert names[:2] == ["train-00000.bin", "train-00000-001.bin"] and "train-00012-001.bin" in names
    assert all(p.with_suffix(".docs.npy").is_file() for p in paths)
    tokens = np.concatenate([np.asarray(open_tokens(p)) for p in paths])
    np.testing.assert_array_equal(tokens, np.concatenate([blocks[b][0][0] for b in (0, 1, 12)]))


def test_truncated_shard(tmp_path):
    write(tmp_path, [(np.arange(1, 11), np.array([10]))], vocab=100, shard_tokens=100)
    path = shard_paths(tmp_path, "train")[0]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(UserError, match=path.name):
        read_header(path)
    with pytest.raises(UserError, match="truncated"):
        open_tokens(path)


def test_file_shorter_than_the_header(tmp_path):
    path = tmp_path / "train-00000.bin"
    path.write_bytes(MAGIC)
    with pytest.raises(UserError, match=path.name):
        read_header(path)


def shard_with_header_bytes(directory: Path, offset: int, replacement: bytes) -> Path:
    """A one-shard split whose header has `replacement` written at `offset`."""
    write(directory, [(np.arange(1, 11), np.array([10]))], vocab=100, shard_tokens=100)
    path = shard_paths(directory, "train")[0]
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(replacement)] = replacement
    path.write_bytes(bytes(raw))
    return path


def test_wrong_magic(tmp_path):
    path = shard_with_header_bytes(tmp_path, 0, b"NOTSHARD")
    with pytest.raises(UserError, match=path.name):
        open_tokens(path)


def test_wrong_version(tmp_path):
    path = shard_with_header_bytes(tmp_path, 8, struct.pack("<I", VERSION + 1))
    with pytest.raises(UserError, match=path.name):
        read_header(path)
