"""Near-duplicate sketches, the LSH band table and index, and a small planted set (bench/dedupe.py's edits)."""
import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from stages.lib.data.near_dedupe import BandTable, MinHasher, NearDuplicateIndex, Sketch, lsh_bands

CORPUS = Path("data/raw/shakespeare-milton")


@pytest.fixture(scope="module")
def hamlet() -> str:
    return (CORPUS / "shakespeare/hamlet_gut.txt").read_text(encoding="utf-8")[:30_000]


@pytest.fixture(scope="module")
def milton() -> str:
    return (CORPUS / "milton/paradiselost.txt").read_text(encoding="utf-8")[:30_000]


def hasher(seed: int = 1337, ngram: int = 3, num_perm: int = 256) -> MinHasher:
    return MinHasher(num_perm=num_perm, ngram=ngram, seed=seed)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def index() -> NearDuplicateIndex:
    return NearDuplicateIndex(256, threshold=0.45, containment=0.8, candidate_threshold=0.3)


# --------------------------------------------------------------------------- sketches

def test_signature_is_deterministic_and_depends_on_seed(hamlet):
    sig = hasher().signature(hamlet)
    assert sig.shape == (256,) and sig.dtype == np.uint16
    assert np.array_equal(sig, hasher().signature(hamlet))  # a fresh hasher, same seed
    assert similarity(sig, hasher(seed=7).signature(hamlet)) < 0.1


def test_minhasher_survives_pickling_for_worker_processes(hamlet):
    original = hasher()
    clone = pickle.loads(pickle.dumps(original))
    assert clone.sketch(hamlet).shingles == original.sketch(hamlet).shingles
    assert np.array_equal(clone.signature(hamlet), original.signature(hamlet))


def test_case_punctuation_and_whitespace_do_not_matter():
    m = hasher()
    a = m.signature("Hello, World! It's a \u201cfine\u201d day -- isn't it?")
    b = m.signature("hello world\n\nits a fine\u00a0day isnt it")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, m.signature("hello world its a fine night isnt it"))


def test_short_and_empty_documents():
    m = hasher()
    short = m.sketch("To be")  # fewer words than ngram: one shingle of both words
    assert short.shingles == 1 and np.array_equal(short.signature, m.signature("to BE!"))
    assert len(set(short.signature.tolist())) == 1  # every empty bin copied the one filled bin
    assert not np.array_equal(short.signature, m.signature("to be or"))
    assert m.sketch("") is None  # no words, nothing to compare
    assert m.sketch(" ... !!! ") is None


def test_shingle_count_is_the_number_of_distinct_ngrams():
    assert hasher().sketch("a b c a b c a b c").shingles == 3  # abc, bca, cab
    assert hasher(ngram=1).sketch("the cat and the hat").shingles == 4


def test_num_perm_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        hasher(num_perm=100)


@pytest.mark.parametrize("words", [60, 1200])  # short documents lean on densification
def test_estimate_tracks_exact_jaccard(words):
    # Word 1-gram sets with exact Jaccard 2/3; 256 bins give a standard error of ~0.03.
    vocab = [f"w{i}" for i in range(words)]
    m = hasher(ngram=1)
    cut = words // 6
    a, b = m.sketch(" ".join(vocab[:words - cut])), m.sketch(" ".join(vocab[cut:]))
    assert abs(similarity(a.signature, b.signature) - 2 / 3) < (0.12 if words < 100 else 0.08)


# --------------------------------------------------------------------------- LSH bands and the band table

@pytest.mark.parametrize("threshold, num_perm", [(0.3, 256), (0.5, 128), (0.2, 64), (0.9, 16)])
def test_lsh_bands_reach_the_recall_and_fit(threshold, num_perm):
    bands = lsh_bands(threshold, num_perm)
    assert 1 <= bands <= num_perm // 2
    if bands < num_perm // 2:
        assert 1 - (1 - threshold**2) ** bands >= 0.99 > 1 - (1 - threshold**2) ** (bands - 1)


def test_band_table_keeps_the_first_value_and_survives_merges():
    rng = np.random.default_rng(0)
    table = BandTable()
    keys = rng.choice(2**32, 200_000, replace=False).astype(np.uint32)
    for i in range(0, len(keys), 50):  # 2^16 keys trigger the first merge into the sorted array
        found, rest = table.get(keys[i:i + 50])
        assert found == [] and len(rest) == 50
        table.put(rest, i)
    assert len(table.keys) > 0 and len(table) == len(keys)
    found, rest = table.get(keys[[0, 70_000, 199_999]])
    assert sorted(found) == [0, 70_000 - 70_000 % 50, 199_950]
    table.put(keys[:10], 12345)  # already stored: the first value stays
    assert table.get(keys[:1])[0] == [0]
    missing = np.array([k for k in rng.integers(0, 2**32, 100, dtype=np.uint64).astype(np.uint32)
                        if k not in set(keys.tolist())], np.uint32)
    assert table.get(missing)[0] == []


# --------------------------------------------------------------------------- the index

def test_identical_documents_match_with_similarity_one(hamlet):
    m, near = hasher(), index()
    assert near.add_or_match("a", m.sketch(hamlet)) is None
    assert near.add_or_match("b", m.sketch(hamlet)) == ("a", 1.0, 1.0)
    assert len(near) == 1  # the duplicate was not added


def test_unrelated_documents_do_not_match(hamlet, milton):
    m, near = hasher(), index()
    assert near.add_or_match("hamlet", m.sketch(hamlet)) is None
    assert near.add_or_match("milton", m.sketch(milton)) is None
    assert len(near) == 2


def test_a_truncated_copy_matches_by_containment(hamlet):
    words = hamlet.split()
    m, near = hasher(), index()
    near.add_or_match("whole", m.sketch(" ".join(words)))
    match = near.add_or_match("half", m.sketch(" ".join(words[:len(words) * 4 // 10])))
    assert match is not None and match[0] == "whole" and match[1] < 0.45 and match[2] > 0.9


def random_sketch(rng: np.random.Generator, like: Sketch | None = None, keep: int = 0, shingles: int = 1000) -> Sketch:
    """Random sketch; with `like`, its first `keep` bins copied from it."""
    sig = rng.integers(0, 2**16, 256, dtype=np.uint16)
    if like is not None:
        sig[:keep] = like.signature[:keep]
    return Sketch(sig, shingles)


def test_candidates_below_threshold_are_verified_away_and_added():
    rng = np.random.default_rng(0)
    near = index()
    a = random_sketch(rng)
    b = random_sketch(rng, like=a, keep=20)  # shares 10 bands with a: a candidate, Jaccard ~0.08
    assert near.add_or_match("a", a) is None
    assert near.add_or_match("b", b) is None
    assert len(near) == 2
    c = Sketch(b.signature.copy(), 1000)
    c.signature[-10:] += 1  # 246/256 bins equal to b
    j = 246 / 256  # equal sizes: containment 2J / (1 + J)
    assert near.add_or_match("c", c) == ("b", pytest.approx(j), pytest.approx(2 * j / (1 + j)))


def test_containment_needs_the_jaccard_floor():
    """A short document whose estimate says 'inside a long one' is a duplicate only above candidate_threshold."""
    rng = np.random.default_rng(1)
    near = index()
    long = random_sketch(rng, shingles=10_000)
    assert near.add_or_match("long", long) is None
    inside = random_sketch(rng, like=long, keep=64, shingles=2_500)  # J 0.25: containment estimate 1.0
    assert near.add_or_match("inside", inside) is None
    inside = random_sketch(rng, like=long, keep=90, shingles=3_000)  # J 0.35 >= 0.3, containment 1.0
    assert near.add_or_match("inside2", inside)[0] == "long"


def test_the_most_similar_candidate_is_returned():
    rng = np.random.default_rng(2)
    near = index()
    a = random_sketch(rng)
    b = random_sketch(rng, like=a, keep=20)
    assert near.add_or_match("a", a) is None
    assert near.add_or_match("b", b) is None
    c = Sketch(b.signature.copy(), 1000)
    c.signature[140:] = a.signature[140:]  # c agrees with b on 140 bins (0.55) and with a on 136 (0.53)
    assert near.add_or_match("c", c)[0] == "b"


def test_signature_of_the_wrong_size_is_rejected():
    with pytest.raises(ValueError, match="signature shape"):
        index().add_or_match("x", Sketch(np.zeros(64, np.uint16), 10))


def test_index_grows_past_its_initial_capacity():
    rng = np.random.default_rng(3)
    near = index()
    sketches = [random_sketch(rng) for _ in range(3000)]
    assert all(near.add_or_match(str(i), s) is None for i, s in enumerate(sketches))  # 147k band keys: merged
    assert near.add_or_match("again", sketches[2500]) == ("2500", 1.0, 1.0)
    assert near.add_or_match("again", sketches[5]) == ("5", 1.0, 1.0)


# --------------------------------------------------------------------------- a small planted set

def load_bench():
    spec = importlib.util.spec_from_file_location("bench_dedupe", Path("bench/dedupe.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_planted_copies_are_caught_and_same_author_documents_kept():
    """Through DocumentCleaner and clean.deduplicate: every edit kind of bench/dedupe.py is caught, and
    consecutive passages of one play and 'stump' siblings sharing up to half their text are kept."""
    bench = load_bench()
    from stages.lib.params import CleanParams
    pool = bench.build_pool("test", seed=5, files=["shakespeare/hamlet_gut.txt", "shakespeare/macbeth_gut.txt"],
                            unrelated="shakespeare/sonnets_gut.txt", originals_per_kind=3, stumps_per_share=2)
    reasons, texts = bench.run_clean(pool, CleanParams())
    removed = [doc_id for doc_id, _ in pool.distinct if reasons[doc_id] is not None]
    assert removed == [], [texts[d] for d in removed]
    assert sum("~stump50" in doc_id for doc_id, _ in pool.distinct) == 2
    for doc_id, kind, _ in pool.copies:
        if kind in bench.TARGETS:
            assert reasons[doc_id] == "near_duplicate", (doc_id, kind)
    assert not any(reasons[doc_id] for doc_id, kind, _ in pool.copies if kind == "sub30")  # a different text
