import pickle
from pathlib import Path

import numpy as np
import pytest

from stages.lib.data.near_dedupe import MinHasher, NearDuplicateIndex, optimal_bands

CORPUS = Path("data/raw/shakespeare-milton")


@pytest.fixture(scope="module")
def hamlet() -> str:
    return (CORPUS / "shakespeare/hamlet_gut.txt").read_text(encoding="utf-8")[:30_000]


@pytest.fixture(scope="module")
def milton() -> str:
    return (CORPUS / "milton/paradiselost.txt").read_text(encoding="utf-8")[:30_000]


def hasher(seed: int = 1337, ngram: int = 5) -> MinHasher:
    return MinHasher(num_perm=128, ngram=ngram, seed=seed)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


# --------------------------------------------------------------------------- signatures

def test_signature_is_deterministic_and_depends_on_seed(hamlet):
    sig = hasher().signature(hamlet)
    assert sig.shape == (128,) and sig.dtype == np.uint32
    assert np.array_equal(sig, hasher().signature(hamlet))  # a fresh hasher, same seed
    assert similarity(sig, hasher(seed=7).signature(hamlet)) < 0.1


def test_minhasher_survives_pickling_for_worker_processes(hamlet):
    original = hasher()
    clone = pickle.loads(pickle.dumps(original))
    assert np.array_equal(clone.signature(hamlet), original.signature(hamlet))


def test_case_punctuation_and_whitespace_do_not_matter():
    m = hasher()
    a = m.signature("Hello, World! It's a \u201cfine\u201d day -- isn't it?")
    b = m.signature("hello world\n\nits a fine\u00a0day isnt it")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, m.signature("hello world its a fine night isnt it"))


def test_short_and_empty_documents():
    m = hasher()
    short = m.signature("To be")  # fewer words than ngram: one shingle of both words
    assert np.array_equal(short, m.signature("to BE!"))
    assert (short != np.iinfo(np.uint32).max).all()  # every slot saw a shingle
    assert not np.array_equal(short, m.signature("to be or"))
    assert m.signature("") is None  # no words, nothing to compare
    assert m.signature(" ... !!! ") is None


def test_estimate_tracks_exact_jaccard():
    # Word 1-gram sets with exact Jaccard 800 / 1200; 128 slots give a standard error of ~0.04.
    words = [f"w{i}" for i in range(1200)]
    m = hasher(ngram=1)
    estimate = similarity(m.signature(" ".join(words[:1000])), m.signature(" ".join(words[200:])))
    assert abs(estimate - 800 / 1200) < 0.15


# --------------------------------------------------------------------------- LSH parameters

@pytest.mark.parametrize("num_perm, threshold", [(16, 0.5), (64, 0.85), (128, 0.8), (128, 0.3), (256, 0.7)])
def test_bands_times_rows_fit_in_the_signature(num_perm, threshold):
    bands, rows = optimal_bands(threshold, num_perm)
    assert bands >= 1 and rows >= 1 and bands * rows <= num_perm
    # The S-curve's midpoint (1/b)^(1/r) sits near the threshold.
    assert abs((1 / bands) ** (1 / rows) - threshold) < 0.1


def test_bands_match_datasketch_optimal_param():
    # Values from datasketch.lsh._optimal_param(threshold, num_perm, 0.5, 0.5).
    assert optimal_bands(0.8, 128) == (9, 13)
    assert optimal_bands(0.5, 128) == (25, 5)
    assert optimal_bands(0.7, 256) == (25, 10)


# --------------------------------------------------------------------------- the index

def test_identical_documents_match_with_similarity_one(hamlet):
    m, index = hasher(), NearDuplicateIndex(128, 0.8)
    assert index.add_or_match("a", m.signature(hamlet)) is None
    assert index.add_or_match("b", m.signature(hamlet)) == ("a", 1.0)
    assert len(index) == 1  # the duplicate was not added


def test_unrelated_documents_do_not_match(hamlet, milton):
    m, index = hasher(), NearDuplicateIndex(128, 0.8)
    assert index.add_or_match("hamlet", m.signature(hamlet)) is None
    assert index.add_or_match("milton", m.signature(milton)) is None
    assert len(index) == 2


def test_lightly_edited_document_matches(hamlet):
    words = hamlet.split()[:3000]
    edited = list(words)
    for i in (100, 900, 1500, 2200, 2900):
        edited[i] = "EDITED"
    m, index = hasher(), NearDuplicateIndex(128, 0.8)
    index.add_or_match("original", m.signature(" ".join(words)))
    match = index.add_or_match("edited", m.signature(" ".join(edited)))
    assert match is not None and match[0] == "original" and match[1] >= 0.9


def make_signature(rng: np.random.Generator, like: np.ndarray | None = None, keep: int = 0) -> np.ndarray:
    """Random signature; with `like`, its first `keep` slots copied from it."""
    sig = rng.integers(0, 2**32, 128, dtype=np.uint64).astype(np.uint32)
    if like is not None:
        sig[:keep] = like[:keep]
    return sig


def test_candidates_below_threshold_are_verified_away_and_added():
    rng = np.random.default_rng(0)
    index = NearDuplicateIndex(128, 0.8)
    a = make_signature(rng)
    b = make_signature(rng, like=a, keep=index.rows * 2)  # shares two bands with a: a candidate, similarity ~0.2
    assert index.add_or_match("a", a) is None
    assert index.add_or_match("b", b) is None
    assert len(index) == 2
    c = b.copy()
    c[-5:] += 1  # 123/128 slots equal to b, still sharing b's first bands
    match = index.add_or_match("c", c)
    assert match is not None and match[0] == "b" and match[1] == pytest.approx(123 / 128)


def test_the_most_similar_candidate_is_returned():
    rng = np.random.default_rng(1)
    index = NearDuplicateIndex(128, 0.8)
    a = make_signature(rng)
    b = make_signature(rng, like=a, keep=90)  # 90/128 = 0.70 < 0.8: kept
    assert index.add_or_match("a", a) is None
    assert index.add_or_match("b", b) is None
    c = b.copy()
    c[90:100] = a[90:100]
    c[120:] = a[120:]  # c agrees with a on 108 slots (0.84) and with b on 110 (0.86): both pass
    assert index.add_or_match("c", c) == ("b", pytest.approx(110 / 128))


def test_signature_of_the_wrong_size_is_rejected():
    with pytest.raises(ValueError, match="signature shape"):
        NearDuplicateIndex(128, 0.8).add_or_match("x", np.zeros(64, np.uint32))


def test_index_grows_past_its_initial_capacity():
    rng = np.random.default_rng(2)
    index = NearDuplicateIndex(16, 0.8)
    sigs = [make_signature(rng)[:16] for _ in range(3000)]
    assert all(index.add_or_match(str(i), s) is None for i, s in enumerate(sigs))
    assert index.add_or_match("again", sigs[2500]) == ("2500", 1.0)
