"""The train/validation split by document, in one place: pack, tasks and instructions all draw it here.

A document goes wholly to validation when a seeded hash of its id falls under
val_fraction (pack.seed, pack.val_fraction), so no document straddles the split,
and the split is stable as the corpus grows. Stages that build data from held-out
text (tasks, instructions) use the same function, so their validation items come
from documents the model never trained on.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import xxhash

from stages.lib.data.documents import Document

_HASH_SCALE = float(1 << 64)


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) that depends only on seed and key (tokenizer sampling draws with it too)."""
    return xxhash.xxh3_64_intdigest(key.encode("utf-8"), seed=seed) / _HASH_SCALE


def is_val(doc_id: str, split_seed: int, val_fraction: float) -> bool:
    return unit_hash(split_seed, doc_id) < val_fraction


def val_documents(docs: Iterable[Document], split_seed: int, val_fraction: float) -> Iterator[Document]:
    return (doc for doc in docs if is_val(doc.id, split_seed, val_fraction))


def train_documents(docs: Iterable[Document], split_seed: int, val_fraction: float) -> Iterator[Document]:
    return (doc for doc in docs if not is_val(doc.id, split_seed, val_fraction))
