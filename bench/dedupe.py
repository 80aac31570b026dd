"""Near-duplicate recall and false positives on a planted set built from the shipped corpus.

Each pool cuts plays or poems from data/raw/shakespeare-milton (public domain)
into passages of 300-2,500 words, one passage per document, in reading order:
consecutive passages of one play are the same-author, same-topic documents
that must all be kept. Some passages are the originals of planted copies,
one copy per original and edit kind (seeded):

    ws_case_punct   whitespace, case and punctuation changed
    sub5 .. sub30   5/10/20/30% of the words replaced by words drawn from the pool
    ocr2            2% of the characters: OCR confusions, drops, insertions (spaces too)
    trunc70         the first 70% of the words
    shuffle         paragraphs in random order
    append20        unrelated text (another pool's file) worth 20% of the words appended

and some passages get a "stump" sibling: a distinct document that reuses a
share (30/40/50%) of the original's paragraphs around new paragraphs of the
same play, like consecutive campaign speeches of one author (word 5-gram
Jaccard 0.18-0.33). They must be kept.

Distinct documents come first in a shuffled order, then the copies, and all
go through the clean stage's own code: `DocumentCleaner.clean` (in this
process) and `local_clean.Deduplicator`. Prints recall per edit kind, the
distinct documents removed, signature throughput and index bytes per kept
document, for two pools with different seeds.

With --engine ray the pool is written as merged parts of several blocks and
cleaned by the Ray engine itself (`ray_clean.clean`, a local Ray instance):
its decisions are shuffles on the cluster, not the local engine's loop, and
the bench prints whether it removed exactly the documents the local engine
removed.

    python bench/dedupe.py              # both pools, defaults from params.yaml
    python bench/dedupe.py -S clean.near_dedupe.threshold=0.6   # (any clean.near_dedupe key)
    python bench/dedupe.py --engine ray
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import re
import string
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import yaml  # noqa: E402

from stages.lib.data.cleaning import DocumentCleaner  # noqa: E402
from stages.lib.engines.local_clean import Deduplicator  # noqa: E402
from stages.lib.params import CleanParams, parse_section  # noqa: E402

CORPUS = ROOT / "data/raw/shakespeare-milton"
PARAGRAPH = re.compile(r"\n[ \t]*\n")
KINDS = ["ws_case_punct", "sub5", "sub10", "sub20", "sub30", "ocr2", "trunc70", "shuffle", "append20"]
TARGETS = {"ws_case_punct", "sub5", "sub10", "ocr2", "trunc70", "shuffle", "append20"}  # >= 14/15 each
STUMP_SHARES = [0.3, 0.4, 0.5]
# One edition per work (the corpus holds folio and modern editions, and Milton's collections repeat poems).
POOLS = {
    "tragedies+histories": dict(seed=1, files=[
        "shakespeare/hamlet_gut.txt", "shakespeare/macbeth_gut.txt", "shakespeare/lear_gut.txt",
        "shakespeare/othello_gut.txt", "shakespeare/julius_caesar_gut.txt", "shakespeare/coriolanus_gut.txt",
        "shakespeare/richard_ii_gut.txt", "shakespeare/henry_v_gut.txt", "shakespeare/henry_iv_part_1_gut.txt"],
        unrelated="milton/areopagitica_gut.txt"),
    "comedies+milton": dict(seed=2, files=[
        "shakespeare/as_you_like_it_gut.txt", "shakespeare/twelfth_night_gut.txt",
        "shakespeare/much_ado_about_nothing_gut.txt", "shakespeare/merchant_of_venice_gut.txt",
        "shakespeare/tempest_gut.txt", "shakespeare/winters_tale_gut.txt",
        "milton/paradise_lost_(no_introduction)_gut.txt", "milton/paradise_regained_gut.txt"],
        unrelated="shakespeare/sonnets_gut.txt"),
}
OCR_CONFUSIONS = {"l": "1I", "i": "l1", "o": "0c", "e": "c", "c": "e", "m": "rn", "n": "m", "h": "b", "b": "h",
                  "a": "o", "s": "5", "t": "f", "f": "t", "u": "v", "v": "u", "g": "q", "d": "cl", "w": "vv"}


# --------------------------------------------------------------------------- the planted set

def read_paragraphs(rel: str, most_words: int = 300) -> list[str]:
    """Blank-line separated paragraphs; a longer one (Milton's books are one each) is cut at
    indented lines (his verse paragraphs) and then at lines, into pieces of at most most_words."""
    text = (CORPUS / rel).read_text(encoding="utf-8")
    paragraphs = []
    for paragraph in PARAGRAPH.split(text):
        piece, words = [], 0
        for line in paragraph.strip("\n").split("\n"):
            if piece and (words + len(line.split()) > most_words or (line[:1].isspace() and words > 50)):
                paragraphs.append("\n".join(piece))
                piece, words = [], 0
            piece.append(line)
            words += len(line.split())
        if piece and words:
            paragraphs.append("\n".join(piece))
    return paragraphs


def cut_passages(paragraphs: list[str], rng: random.Random, lo: int = 300, hi: int = 2500) -> list[list[str]]:
    """Consecutive paragraphs grouped into passages of lo..hi words (the last, shorter one dropped)."""
    passages, current, words, target = [], [], 0, rng.randint(lo, hi)
    for paragraph in paragraphs:
        current.append(paragraph)
        words += len(paragraph.split())
        if words >= target:
            passages.append(current)
            current, words, target = [], 0, rng.randint(lo, hi)
    return passages


def substitute(text: str, share: float, vocab: list[str], rng: random.Random) -> str:
    tokens = re.split(r"(\s+)", text)  # words at even positions, whitespace kept
    words = range(0, len(tokens), 2)
    for i in rng.sample(words, round(share * len(words))):
        tokens[i] = rng.choice(vocab)
    return "".join(tokens)


def ocr_noise(text: str, rate: float, rng: random.Random) -> str:
    out = []
    for ch in text:
        if rng.random() >= rate:
            out.append(ch)
            continue
        roll = rng.random()
        if roll < 0.6:  # a confusion (a random letter where none is listed; a space read as a letter)
            out.append(rng.choice(OCR_CONFUSIONS.get(ch.lower(), string.ascii_lowercase)))
        elif roll < 0.8:  # dropped
            pass
        else:  # a speck read as a character
            out.append(ch + rng.choice(string.ascii_lowercase + ".,'"))
    return "".join(out)


def surface_variant(text: str, rng: random.Random) -> str:
    """Case, punctuation and whitespace changed; the words themselves kept."""
    text = text.upper() if rng.random() < 0.5 else text.lower()
    text = re.sub(r"[,;:.!?'-]", lambda m: rng.choice(["", " ", m.group(0) * 2, "--"]), text)
    return re.sub(r"[ \n]+", lambda m: rng.choice([" ", "  ", "\n", " \n", "\t"]), text)


def edit(kind: str, paragraphs: list[str], pool: "Pool", rng: random.Random) -> str:
    text = "\n\n".join(paragraphs)
    if kind == "ws_case_punct":
        return surface_variant(text, rng)
    if kind.startswith("sub"):
        return substitute(text, int(kind[3:]) / 100, pool.vocab, rng)
    if kind == "ocr2":
        return ocr_noise(text, 0.02, rng)
    if kind == "trunc70":
        spans = list(re.finditer(r"\S+", text))
        return text[:spans[int(0.7 * len(spans)) - 1].end()]
    if kind == "shuffle":
        shuffled = list(paragraphs)
        rng.shuffle(shuffled)
        return "\n\n".join(shuffled)
    if kind == "append20":
        want, extra = 0.2 * len(text.split()), []
        start = rng.randrange(len(pool.unrelated))
        for paragraph in pool.unrelated[start:] + pool.unrelated[:start]:
            if sum(len(p.split()) for p in extra) >= want:
                break
            extra.append(paragraph)
        return text + "\n\n" + "\n\n".join(extra)
    raise ValueError(kind)


@dataclasses.dataclass
class Pool:
    name: str
    distinct: list[tuple[str, str]]  # (id, text) of documents that must all be kept
    copies: list[tuple[str, str, str]]  # (id, kind, text)
    vocab: list[str]
    unrelated: list[str]


def build_pool(name: str, seed: int, files: list[str], unrelated: str, originals_per_kind: int = 15,
               stumps_per_share: int = 15) -> Pool:
    rng = random.Random(seed)
    pool = Pool(name, [], [], [], read_paragraphs(unrelated))
    passages: list[tuple[str, list[str]]] = []
    spare: dict[str, list[str]] = {}  # per file, paragraphs used only as stump filler, each once
    for rel in files:
        cut = cut_passages(read_paragraphs(rel), rng)
        work = Path(rel).stem
        spare[work] = [p for passage in cut[1::3] for p in passage]  # every 3rd passage: in no other document
        passages += [(f"{work}/{i}", p) for i, p in enumerate(cut) if i % 3 != 1]
    pool.vocab = sorted({w for _, p in passages for para in p for w in para.split()})
    pool.distinct = [(pid, "\n\n".join(p)) for pid, p in passages]

    chosen = rng.sample(passages, originals_per_kind)
    for kind in KINDS:  # every kind edits the same originals, so kinds compare like for like
        for pid, paragraphs in chosen:
            pool.copies.append((f"{pid}~{kind}", kind, edit(kind, paragraphs, pool, rng)))
    stumped = rng.sample(passages, stumps_per_share * len(STUMP_SHARES))
    for i, (pid, paragraphs) in enumerate(stumped):
        share = STUMP_SHARES[i // stumps_per_share]
        pool.distinct.append((f"{pid}~stump{int(share * 100)}", stump(paragraphs, share, spare, pid, rng)))
    rng.shuffle(pool.distinct)
    rng.shuffle(pool.copies)
    return pool


def stump(paragraphs: list[str], share: float, spare: dict[str, list[str]], pid: str, rng: random.Random) -> str:
    """A distinct document: `share` of the original's words (a run of whole lines), the rest new text
    of the same work (another work of the pool once that runs out), used by no other document."""
    lines = "\n".join(paragraphs).split("\n")
    words = sum(len(line.split()) for line in lines)
    start = rng.randrange(len(lines))
    reused, count = [], 0
    for line in lines[start:] + lines[:start]:
        if count + len(line.split()) > share * words:
            break
        reused.append(line)
        count += len(line.split())
    work = pid.split("/")[0]
    new, total = [], 0
    for source in [work] + sorted(spare):
        while spare[source] and total < words - count:
            new.append(spare[source].pop())
            total += len(new[-1].split())
    if total < words - count:
        raise RuntimeError(f"{pid}: the pool has too little filler text left for its stump siblings")
    cut = rng.randrange(len(new) + 1)
    return "\n\n".join(new[:cut] + ["\n".join(reused)] + new[cut:])


# --------------------------------------------------------------------------- running it through clean

def run_clean(pool: Pool, params: CleanParams) -> tuple[dict[str, str | None], dict[str, str]]:
    """Every document through DocumentCleaner and local_clean.Deduplicator: (id -> removal reason or None,
    id -> the excerpt clean reports for a removed document)."""
    cleaner, dedupe = DocumentCleaner(params), Deduplicator(params)
    results = [dedupe.mark(cleaner.clean(*doc)) for doc in pool_documents(pool)]  # in order
    return {r.id: r.reason for r in results}, {r.id: r.text for r in results if r.reason}


def pool_documents(pool: Pool) -> list[tuple[str, str, str]]:
    docs = [(doc_id, pool.name, text) for doc_id, text in pool.distinct]
    return docs + [(doc_id, pool.name, text) for doc_id, _, text in pool.copies]


def run_ray_clean(pool: Pool, params: CleanParams, blocks: int = 4) -> set[str]:
    """The ids the Ray engine removes, the pool written as `blocks` merged parts (the stage's own code)."""
    import tempfile

    from stages.lib.data.documents import Document, DocumentWriter, iter_documents
    from stages.lib.engines import ray_clean

    docs = pool_documents(pool)
    with tempfile.TemporaryDirectory() as tmp:
        merged, out, scratch = Path(tmp, "merged"), Path(tmp, "clean"), Path(tmp, "scratch")
        per_block = -(-len(docs) // blocks)
        for block in range(blocks):
            with DocumentWriter(merged, block=block) as writer:
                for doc_id, source, text in docs[block * per_block:(block + 1) * per_block]:
                    writer.write(Document(doc_id, source, text))
        ray_clean.clean(merged, out, scratch, params, DocumentCleaner(params))
        kept = {doc.id for doc in iter_documents(out)}
    return {doc_id for doc_id, _, _ in docs} - kept


def signature_speed(pool: Pool, params: CleanParams) -> tuple[float, float]:
    """MB/s of one core computing sketches of the pool's documents (as a clean worker does), and of
    the previous design (128-permutation MinHash of word 5-grams) on the same texts."""
    import numpy as np

    from stages.lib.data.near_dedupe import MinHasher
    near = params.near_dedupe
    hasher, old = MinHasher(near.num_perm, near.ngram, near.seed), MinHasher(128, 5, near.seed)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 2**64, 128, dtype=np.uint64)[:, None] for _ in range(2))

    def previous(text: str) -> np.ndarray:  # slot i: min over shingles of (a_i x + b_i) mod 2^64, 8192 at a time
        shingles = old.shingles(text) >> np.uint64(32)
        with np.errstate(over="ignore"):
            return np.min([(a * shingles[i:i + 8192] + b).min(axis=1) for i in range(0, len(shingles), 8192)], axis=0)

    texts = [text for _, text in pool.distinct] + [text for _, _, text in pool.copies]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    speeds = []
    for sketch in (hasher.sketch, previous):
        sketch(texts[0])  # warm up the character tables
        start = time.perf_counter()
        for text in texts:
            sketch(text)
        speeds.append(megabytes / (time.perf_counter() - start))
    return speeds[0], speeds[1]


def index_cost(params: CleanParams, docs: int, seed: int = 0) -> tuple[float, float]:
    """(bytes per kept document, microseconds per document) of the index on distinct random sketches:
    one timed pass, then one under tracemalloc for the memory (ids included, as merge writes them)."""
    import numpy as np

    from stages.lib.data.near_dedupe import NearDuplicateIndex, Sketch
    near = params.near_dedupe
    rng = np.random.default_rng(seed)
    sketches = [Sketch(s, int(n)) for s, n in zip(rng.integers(0, 2**16, (docs, near.num_perm), dtype=np.uint16),
                                                   rng.integers(300, 3000, docs))]

    def fill() -> NearDuplicateIndex:
        index = NearDuplicateIndex.from_params(near)
        for i, sketch in enumerate(sketches):
            index.add_or_match(f"corpus/speeches-{i // 1000:04d}.jsonl:{i % 1000}", sketch)
        return index

    start = time.perf_counter()
    fill()
    micros = (time.perf_counter() - start) / docs * 1e6
    tracemalloc.start()
    index = fill()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current / len(index), micros


def report_pool(pool: Pool, params: CleanParams) -> dict:
    reasons, texts = run_clean(pool, params)
    print(f"\n## {pool.name}: {len(pool.distinct)} distinct documents, {len(pool.copies)} copies")
    other = {doc_id: r for doc_id, r in reasons.items() if r and r not in ("near_duplicate", "exact_duplicate")}
    if other:
        print(f"   removed by other rules (left out of the counts): {collections.Counter(other.values())}")
    caught = collections.Counter()
    total = collections.Counter()
    for doc_id, kind, _ in pool.copies:
        if doc_id in other:
            continue
        total[kind] += 1
        caught[kind] += reasons[doc_id] is not None
    print("   | edit | caught | target |")
    print("   |---|---:|---|")
    for kind in KINDS:
        target = ">= 14/15" if kind in TARGETS else "(reported)"
        print(f"   | {kind} | {caught[kind]}/{total[kind]} | {target} |")
    false_pos = [doc_id for doc_id, _ in pool.distinct if doc_id not in other and reasons[doc_id] is not None]
    stumps = collections.Counter(d.split("~")[1] for d, _ in pool.distinct if "~stump" in d)
    print(f"   distinct documents removed: {len(false_pos)} of {len(pool.distinct) - len(other)} "
          f"(among them {sum(stumps.values())} stump siblings sharing {', '.join(map(str, sorted(stumps)))})")
    for doc_id in false_pos:
        print(f"     {doc_id}: {texts[doc_id][:110]}")
    return {"caught": caught, "total": total, "false_positives": len(false_pos)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", dest="overrides", action="append", default=[],
                        help="clean.near_dedupe.KEY=VALUE (repeatable)")
    parser.add_argument("--index-docs", type=int, default=100_000, help="random sketches for the index cost")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: also clean each pool with the Ray engine and compare its removals")
    args = parser.parse_args()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["clean"]
    for override in args.overrides:
        key, value = override.split("=", 1)
        raw["near_dedupe"][key.removeprefix("clean.near_dedupe.")] = yaml.safe_load(value)
    params: CleanParams = parse_section("clean", raw)
    print(f"near_dedupe: {dataclasses.asdict(params.near_dedupe)}")

    failed = []
    for name, spec in POOLS.items():
        pool = build_pool(name, **spec)
        result = report_pool(pool, params)
        if args.engine == "ray":
            local = {doc_id for doc_id, reason in run_clean(pool, params)[0].items() if reason}
            ray = run_ray_clean(pool, params)
            same = "yes" if ray == local else f"NO ({len(ray - local)} more, {len(local - ray)} fewer)"
            print(f"   engine ray: the same {len(ray)} documents removed as by engine local: {same}")
            failed += [f"{name}/ray_differs"] * (ray != local)
        new, old = signature_speed(pool, params)
        print(f"   signature: {new:.1f} MB/s on one core (previous design, 128 permutations of 5-grams: {old:.1f})")
        failed += [f"{name}/{k}" for k in TARGETS if result["caught"][k] < result["total"][k] - 1]
        failed += [f"{name}/false_positives"] * bool(result["false_positives"])
    per_doc, micros = index_cost(params, args.index_docs)
    print(f"\nindex: {per_doc:.0f} bytes per kept document and {micros:.0f} us per document "
          f"({args.index_docs:,} distinct random sketches; memory by tracemalloc, ids included)")
    print("targets met" if not failed else f"targets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
