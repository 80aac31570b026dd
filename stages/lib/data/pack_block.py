"""One block of pack: a clean part file's documents, encoded batch by batch, written to the block's own shards.

Both of pack's engines write a block through `BlockShards` and add up the
`PackCounts` it returns in block order, so they write the same files and
report the same figures whoever wrote which block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stages.lib.data.packing import SPLITS, Encoded
from stages.lib.data.shards import ShardWriter


def _per_split() -> dict[str, int]:
    return dict.fromkeys(SPLITS, 0)


@dataclass
class PackCounts:
    """What pack wrote, per split, and the <unk> tokens of all of it."""
    documents: dict[str, int] = field(default_factory=_per_split)
    tokens: dict[str, int] = field(default_factory=_per_split)
    bytes: dict[str, int] = field(default_factory=_per_split)  # UTF-8 bytes of the documents' text
    shards: dict[str, int] = field(default_factory=_per_split)  # shard files
    unknown: int = 0  # tokens standing for text the vocabulary cannot spell

    def add(self, other: PackCounts) -> None:
        for name in ("documents", "tokens", "bytes", "shards"):
            for split, count in getattr(other, name).items():
                getattr(self, name)[split] += count
        self.unknown += other.unknown


class BlockShards:
    """Block `block`'s ShardWriters, one per split, fed encoded batches in document order."""

    def __init__(self, out_dir: Path, block: int, vocab_size: int, shard_tokens: int):
        self.writers = {s: ShardWriter(out_dir, s, vocab_size, shard_tokens, block=block) for s in SPLITS}
        self.counts = PackCounts()

    def write(self, encoded: dict[str, Encoded]) -> None:
        for split, batch in encoded.items():
            self.writers[split].write_documents(batch.flat, batch.lengths)
            self.counts.bytes[split] += batch.text_bytes
            self.counts.unknown += batch.unknown

    def close(self) -> PackCounts:
        """Close the last shard of each split; the block's counts."""
        for split, writer in self.writers.items():
            writer.close()
            self.counts.documents[split] = writer.total_documents
            self.counts.tokens[split] = writer.total_tokens
            self.counts.shards[split] = writer.shards
        return self.counts

