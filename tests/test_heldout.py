"""The loop both item builders share: positions drawn uniformly over a corpus, items built in rank order, in two
passes; the emptiness check the stages run on what it built."""
from __future__ import annotations

import collections
import random

import pytest

from stages.lib.data.documents import Document
from stages.lib.data.heldout import draw_items, draw_positions, require_items
from stages.lib.errors import UserError


def test_draw_positions_samples_without_replacement_and_maps_back_to_documents():
    counts = [3, 0, 5, 2]
    drawn = draw_positions(counts, 7, random.Random(1))
    ranks = sorted(rank for draws in drawn.values() for rank, _ in draws)
    assert ranks == list(range(7))
    assert 1 not in drawn  # a document with no usable position is never drawn
    pairs = {(d, i) for d, draws in drawn.items() for _, i in draws}
    assert len(pairs) == 7 and all(0 <= i < counts[d] for d, i in pairs)
    everything = draw_positions(counts, 100, random.Random(1))  # more wanted than there are: all of them
    assert sorted((d, i) for d, draws in everything.items() for _, i in draws) == \
        [(d, i) for d, n in enumerate(counts) for i in range(n)]


def test_draw_positions_is_uniform_over_the_corpus_not_over_documents():
    hits = collections.Counter()
    for seed in range(2000):
        for d, draws in draw_positions([1, 9], 1, random.Random(seed)).items():
            hits[d] += len(draws)
    assert 0.05 < hits[0] / 2000 < 0.15  # a tenth of the positions, a tenth of the draws


class Words:
    """Each word of the document is a position; the item is the word, or None for words starting with x."""

    def __init__(self, doc: Document):
        self.words = doc.text.split()

    def positions(self, kind: str) -> list[int]:
        return list(range(len(self.words)))

    def item(self, kind: str, p: int, rng: random.Random) -> str | None:
        return None if self.words[p].startswith("x") else f"{kind}:{self.words[p]}"


def test_draw_items_reads_twice_builds_in_rank_order_and_skips_failures():
    docs = [Document(f"d{i}", "t", " ".join(f"{c}{i}" for c in "abxcd")) for i in range(6)]
    passes = []

    def documents():
        passes.append(1)
        return iter(docs)

    built = draw_items(documents, Words, {"one": 5, "two": 3}, "7")
    assert len(passes) == 2
    assert len(built["one"]) == 5 and len(built["two"]) == 3
    assert not any(item.split(":")[1].startswith("x") for items in built.values() for item in items)
    assert built == draw_items(lambda: docs, Words, {"one": 5, "two": 3}, "7")  # seeded
    assert built != draw_items(lambda: docs, Words, {"one": 5, "two": 3}, "8")
    # Each kind draws with its own generator: wanting more of one leaves the other's items as they were.
    assert draw_items(lambda: docs, Words, {"one": 8, "two": 3}, "7")["two"] == built["two"]


def test_draw_items_gives_fewer_when_the_documents_hold_fewer():
    docs = [Document("d", "t", "a b x c")]
    assert sorted(draw_items(lambda: docs, Words, {"k": 10}, "1")["k"]) == ["k:a", "k:b", "k:c"]


def test_require_items_names_the_empty_kind_and_what_to_do():
    require_items({"a": [1], "b": [2]}, "item", "the documents in X", "add some")
    with pytest.raises(UserError, match="^no b item could be built from the documents in X: add some$"):
        require_items({"a": [1], "b": []}, "item", "the documents in X", "add some")
