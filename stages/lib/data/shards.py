"""Token shards: `{split}-NNNNN.bin` files of a fixed header followed by token ids.

Header (32 bytes, little-endian): magic b"LMSHARD1", format version (u32),
bytes per token (u32: 2 for uint16, 4 for uint32), token count (u64),
vocab size (u32), reserved (u32). Tokens follow at byte 32, documents joined
by the end-of-text token. A sidecar `{split}-NNNNN.docs.npy` holds each
document's end offset (exclusive, in tokens). Shards are read with np.memmap,
never whole.

Pack writes one block (one clean part file) per ShardWriter, so blocks can be
written at once by different processes or nodes: block b's shards are
`{split}-{b:05d}.bin`, then `{split}-{b:05d}-{sub:03d}.bin` (sub 1, 2, ...)
each time one fills; readers take them in (block, sub) order.
"""
from __future__ import annotations

import glob
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.lib.errors import UserError

MAGIC = b"LMSHARD1"
VERSION = 1
HEADER = struct.Struct("<8sIIQII")
HEADER_BYTES = 32
assert HEADER.size == HEADER_BYTES


META_FILE = "meta.json"  # what pack wrote: vocabulary, tokenizer fingerprint, counts per split


def read_meta(path: Path, *keys: str) -> dict:
    """The shards' meta.json (at `path`), refused in one line when it is missing, damaged or lacks a (dotted)
    key read."""
    if not path.is_file():
        raise UserError(f"{path} not found: run the pack stage first (dvc repro)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
        raise UserError(f"{path} is damaged ({str(err).splitlines()[0]}): rerun the pack stage "
                        f"(dvc repro --force pack)") from None
    for key in keys:
        value = meta
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise UserError(f"{path} has no {key}: it is damaged or from another version; rerun the pack stage "
                            f"(dvc repro --force pack)")
    return meta


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


@dataclass
class ShardInfo:
    path: Path
    n_tokens: int
    dtype: np.dtype
    vocab_size: int


def read_header(path: Path) -> ShardInfo:
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise UserError(f"{path} is not a token shard (too short): rerun the pack stage")
    magic, version, itemsize, n_tokens, vocab_size, _ = HEADER.unpack(raw)
    if magic != MAGIC or version != VERSION or itemsize not in (2, 4):
        raise UserError(f"{path} is not a token shard of format version {VERSION}: rerun the pack stage")
    dtype = np.dtype(np.uint16 if itemsize == 2 else np.uint32)
    expected = HEADER_BYTES + n_tokens * itemsize
    if path.stat().st_size != expected:
        raise UserError(f"{path} is truncated ({path.stat().st_size} bytes, expected {expected}): rerun the pack stage")
    return ShardInfo(path, n_tokens, dtype, vocab_size)


def open_tokens(path: Path) -> np.ndarray:
    """The shard's tokens as a read-only memmap."""
    info = read_header(path)
    return np.memmap(path, dtype=info.dtype, mode="r", offset=HEADER_BYTES, shape=(info.n_tokens,))


def shard_path(directory: Path, split: str, block: int, sub: int = 0, suffix: str = ".bin") -> Path:
    """Where shard `sub` of block `block` goes: train-00007.bin, then train-00007-001.bin, ..."""
    name = f"{split}-{block:05d}" if sub == 0 else f"{split}-{block:05d}-{sub:03d}"
    return Path(directory) / f"{name}{suffix}"


def shard_paths(directory: Path, split: str) -> list[Path]:
    """The split's shards in document order: by block, then sub, compared as numbers."""
    pattern = re.compile(rf"{re.escape(split)}-(\d{{5,}})(?:-(\d{{3,}}))?\.bin")
    shards = {}
    for path in Path(directory).glob(f"{glob.escape(split)}-*.bin"):
        if match := pattern.fullmatch(path.name):
            shards[path] = (int(match.group(1)), int(match.group(2) or 0))
    return sorted(shards, key=shards.get)


class ShardWriter:
    """Write one split's documents of block `block` into shards of about `shard_tokens` tokens (closed at
    document ends)."""

    def __init__(self, directory: Path, split: str, vocab_size: int, shard_tokens: int, block: int = 0):
        self.directory = Path(directory)
        self.split = split
        self.vocab_size = vocab_size
        self.dtype = token_dtype(vocab_size)
        self.shard_tokens = shard_tokens
        self.block = block
        self.shards = 0  # shard files written (closed); the next one is sub `shards`
        self.total_tokens = 0
        self.total_documents = 0
        self._file = None
        self._n = 0
        self._doc_ends: list[np.ndarray] = []

    def _path(self, suffix: str) -> Path:
        return shard_path(self.directory, self.split, self.block, self.shards, suffix)

    def write_documents(self, tokens: np.ndarray, doc_lengths: np.ndarray) -> None:
        """Append documents given as one flat token array and their lengths (end-of-text included)."""
        tokens = np.asarray(tokens, dtype=self.dtype)
        offset, first = 0, 0
        while first < len(doc_lengths):
            if self._file is None:
                self._file = open(self._path(".bin"), "wb")
                self._file.write(b"\0" * HEADER_BYTES)  # filled in on close, once the count is known
            ends = self._n + np.cumsum(doc_lengths[first:])
            # Take documents up to the first one that reaches shard_tokens: shards end at document ends.
            take = min(int(np.searchsorted(ends, self.shard_tokens)) + 1, len(ends))
            n_new = int(ends[take - 1]) - self._n
            self._file.write(tokens[offset:offset + n_new].tobytes())
            self._doc_ends.append(ends[:take])
            self._n += n_new
            self.total_tokens += n_new
            self.total_documents += take
            offset += n_new
            first += take
            if self._n >= self.shard_tokens:
                self._close_shard()

    def _close_shard(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.write(HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self._n, self.vocab_size, 0))
        self._file.close()
        np.save(self._path(".docs.npy"), np.concatenate(self._doc_ends).astype(np.int64))
        self._file, self._n, self._doc_ends = None, 0, []
        self.shards += 1

    def close(self) -> None:
        self._close_shard()
