"""The train/validation split by document, in one place: pack, tasks and instructions all draw it here.

A document goes wholly to validation when a seeded hash of its id falls under
val_fraction (pack.seed, pack.val_fraction), so no document straddles the split,
and the split is stable as the corpus grows. Stages that build data from held-out
text (tasks, instructions) use the same function, so their validation items come
from documents the model never trained on.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from stages.lib.data.documents import Document
from stages.lib.data.sampling import unit_hash


def is_val(doc_id: str, split_seed: int, val_fraction: float) -> bool:
    return unit_hash(split_seed, doc_id) < val_fraction


def val_documents(docs: Iterable[Document], split_seed: int, val_fraction: float) -> Iterator[Document]:
    return (doc for doc in docs if is_val(doc.id, split_seed, val_fraction))


def train_documents(docs: Iterable[Document], split_seed: int, val_fraction: float) -> Iterator[Document]:
    return (doc for doc in docs if not is_val(doc.id, split_seed, val_fraction))
