"""Deterministic chunk sampling for tokenizer training."""
from __future__ import annotations

import pytest

from stages.lib.data.sampling import chunks, sample_chunks
from stages.lib.data.split import unit_hash


@pytest.mark.parametrize("size", [1, 7, 50, 200, 10_000])
def test_chunks_reassemble(sample_text, size):
    pieces = list(chunks(sample_text, size))
    assert "".join(pieces) == sample_text
    assert all(0 < len(p) <= size for p in pieces)


@pytest.mark.parametrize("size", [100, 300])
def test_chunks_cut_after_newlines(sample_text, size):
    # Hamlet's lines are shorter than `size`, so every chunk but the last ends at a line end.
    assert max(len(line) for line in sample_text.splitlines(keepends=True)) < size
    pieces = list(chunks(sample_text, size))
    assert len(pieces) > 5
    assert all(p.endswith("\n") for p in pieces[:-1])
    # ...and takes as many whole lines as fit: the next line would not.
    for piece, following in zip(pieces, pieces[1:]):
        next_line = following.split("\n", 1)[0] + "\n"
        assert len(piece) + len(next_line) > size or "\n" not in following


def test_chunks_without_newlines_cut_at_size():
    assert list(chunks("abcdefghij", 4)) == ["abcd", "efgh", "ij"]
    assert list(chunks("", 4)) == []


def test_unit_hash_range_and_determinism():
    values = [unit_hash(7, f"k{i}") for i in range(1000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert values == [unit_hash(7, f"k{i}") for i in range(1000)]
    assert values != [unit_hash(8, f"k{i}") for i in range(1000)]


def many_docs(n: int = 3000) -> list[tuple[str, str]]:
    return [(f"doc-{i}", f"text of document {i}\n") for i in range(n)]


def test_sample_is_deterministic(sample_text):
    docs = [("a", sample_text), *many_docs(200)]
    assert list(sample_chunks(docs, 0.5, seed=1)) == list(sample_chunks(docs, 0.5, seed=1))


def test_fraction_one_keeps_everything(sample_text):
    docs = [("a", sample_text), ("b", "short\n"), *many_docs(50)]
    kept = list(sample_chunks(docs, 1.0, seed=1))
    assert "".join(kept) == "".join(text for _, text in docs)


def test_fraction_zero_keeps_nothing():
    assert list(sample_chunks(many_docs(500), 0.0, seed=1)) == []


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.75])
def test_keeps_roughly_the_fraction(fraction):
    docs = many_docs(4000)  # one chunk each
    kept = list(sample_chunks(docs, fraction, seed=1337))
    # Binomial standard deviation is at most 0.008 here: 0.04 is five of them.
    assert abs(len(kept) / len(docs) - fraction) < 0.04
    assert set(kept) <= {text for _, text in docs}


def test_depends_on_the_seed():
    docs = many_docs(1000)
    a = list(sample_chunks(docs, 0.5, seed=1))
    b = list(sample_chunks(docs, 0.5, seed=2))
    assert a != b


def test_sample_of_a_document_does_not_depend_on_the_others():
    docs = many_docs(500)
    alone = list(sample_chunks(docs[:250], 0.5, seed=3))
    grown = list(sample_chunks(docs, 0.5, seed=3))
    assert grown[:len(alone)] == alone  # a growing corpus keeps the earlier selection
