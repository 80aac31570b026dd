"""Splitting and tokenizing documents for the shards, shared by pack's engines, so both write the same tokens.

`split_of` routes a document to train or val by a seeded hash of its id.
`encode` turns a batch of texts into one flat token array with the
end-of-text token after each document, plus the counts pack reports. The
result does not depend on how documents are batched, so the local engine's
batches and the Ray engine's row groups give the same shards.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from stages.lib.data.split import is_val
from stages.lib.params import PackParams
from stages.lib.tokens.tokenizer_adapter import Tokenizer

SPLITS = ("train", "val")


@dataclass
class Encoded:
    """One batch of one split: a flat token array with end-of-text after each document, and counts."""
    flat: np.ndarray  # [tokens] int64
    lengths: np.ndarray  # [documents] tokens per document, end-of-text included
    text_bytes: int  # UTF-8 bytes of the documents' text
    unknown: int  # tokens standing for text the vocabulary cannot spell (lost from the shards)


def split_of(doc_id: str, params: PackParams) -> str:
    """The split a document goes to, whole: no document straddles train and val."""
    return "val" if is_val(doc_id, params.seed, params.val_fraction) else "train"


def encode(tok: Tokenizer, texts: list[str]) -> Encoded:
    ids = tok.encode_batch(texts) if texts else []
    for doc in ids:
        doc.append(tok.eot_id)
    lengths = np.fromiter((len(doc) for doc in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    unknown = int((flat == tok.unk_id).sum()) if tok.unk_id is not None else 0
    return Encoded(flat, lengths, sum(len(text.encode("utf-8")) for text in texts), unknown)
