"""On a Ray cluster of three nodes, merge, clean and pack write the same files as the local engine.

`ray.cluster_utils.Cluster` runs a head and two worker nodes (one CPU each) on
this machine: separate raylets and object stores, so tasks run in other
processes on other "nodes" and everything they write goes through the shared
filesystem, as on a real cluster. The stages find Ray initialized and use it.

Each corpus spans several blocks (merge: runs of input files, here lowered to
a few KB through sources.BLOCK_BYTES; clean and pack: one input part each), so
every cross-block decision is made on the cluster: exact and near copies in
later blocks than their originals, boilerplate counted across blocks, and a
chain A ~ B ~ C (A and C unlike) whose outcome depends on the rule "dropped
when an earlier KEPT document is similar": A kept, B dropped, C kept.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from test_ray_engine import both_engines, run_stage  # noqa: E402  (the same two projects, one per engine)

from stages import clean as clean_stage  # noqa: E402
from stages import merge as merge_stage  # noqa: E402
from stages import pack as pack_stage  # noqa: E402
from stages import tokenizer as tokenizer_stage  # noqa: E402
from stages.lib.data import sources  # noqa: E402
from stages.lib.data.documents import Document, DocumentWriter, iter_documents, part_files  # noqa: E402
from stages.lib.data.shards import shard_paths  # noqa: E402
from stages.lib.engines.ray_session import STAGES_DIR  # noqa: E402

pytestmark = pytest.mark.slow  # a three-node Ray cluster for the module

NODE = {"num_cpus": 1, "object_store_memory": 150 << 20}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    address = os.environ.pop("RAY_ADDRESS", None)  # this cluster, whatever the shell says
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(**NODE)
        # As a stage connects to a cluster (ray_session.start_ray): the stages' code shipped to every node.
        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"py_modules": [str(STAGES_DIR)], "excludes": ["__pycache__"]})
        cluster.wait_for_nodes()
        assert sum(node["Alive"] for node in ray.nodes()) == 3
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if address is not None:
            os.environ["RAY_ADDRESS"] = address


def assert_same_projects(a: Path, b: Path) -> list[str]:
    """Every file of project a is in project b with the same bytes and the other way round (params.yaml,
    which names the engine, aside); returns the names."""
    def files(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    names = [name for name in files(a) if name != "params.yaml"]
    assert names == [name for name in files(b) if name != "params.yaml"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between the engines"
    return names


@pytest.fixture(scope="module")
def words(sample_text) -> list[str]:
    """Hamlet's words with their frequencies (repeats kept), numbers left out: no personal data by chance."""
    return [w for w in sample_text.split() if any(c.isalpha() for c in w)]


def prose(rng: random.Random, words: list[str], n_words: int) -> str:
    """Lines of ten random words: unrelated documents share next to no word 3-grams."""
    drawn = rng.choices(words, k=n_words)
    return "\n".join(" ".join(drawn[i:i + 10]) for i in range(0, n_words, 10))


def edited(text: str, rng: random.Random, share: float) -> str:
    """text with `share` of its words replaced by new ones, line breaks kept."""
    lines = [line.split(" ") for line in text.split("\n")]
    spots = [(i, j) for i, line in enumerate(lines) for j in range(len(line))]
    for i, j in rng.sample(spots, round(share * len(spots))):
        lines[i][j] = f"w{rng.randrange(10**6)}"
    return "\n".join(" ".join(line) for line in lines)


def output_part_names(directory: Path) -> list[str]:
    return [p.name for p in part_files(directory)]


# --------------------------------------------------------------------------- merge

def raw_files(project: Path, words: list[str]) -> None:
    """About 60 KB in 31 files of every kind merge reads, plus a bad record and a skipped extension."""
    rng = random.Random(1)
    raw = project / "data/raw"
    for folder in ("books", "web"):
        (raw / folder).mkdir(parents=True)
    for i in range(16):
        (raw / "books" / f"book{i:02d}.txt").write_text(prose(rng, words, 300), encoding="utf-8")
    for i in range(8):
        records = [json.dumps({"text": prose(rng, words, 60)}) for _ in range(4)]
        if i == 5:
            records.insert(2, '{"title": "no text field"}')  # counted as a bad record (bad_files: skip)
        (raw / "web" / f"crawl{i}.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
    for i in range(4):
        (raw / "web" / f"page{i}.md").write_text(f"# Page {i}\n\n{prose(rng, words, 200)}\n", encoding="utf-8")
    for i in range(3):
        (raw / f"zipped{i}.txt.gz").write_bytes(gzip.compress(prose(rng, words, 250).encode("utf-8"), mtime=0))
    (raw / "image.png").write_bytes(b"\x89PNG")


def test_merge_on_a_cluster_writes_every_block_as_the_local_engine(tmp_path, monkeypatch, words):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 8_000)  # files are grouped on the driver: ~8 blocks
    local, on_ray = both_engines(tmp_path, monkeypatch, lambda p: raw_files(p, words), merge_stage, "merge",
                                 bad_files="skip")
    assert_same_projects(local, on_ray)
    parts = output_part_names(on_ray / merge_stage.OUT_DIR)
    assert len(parts) >= 5 and parts[:2] == ["part-00000.parquet", "part-00001.parquet"]
    metrics = json.loads((on_ray / "metrics/merge.json").read_text())
    assert (metrics["files_read"], metrics["documents"], metrics["bad_records"]) == (31, 16 + 32 + 4 + 3, 1)
    ids = [doc.id for doc in iter_documents(on_ray / merge_stage.OUT_DIR)]
    assert ids[0].startswith("books/book00.txt") and ids[-1].startswith("zipped2.txt.gz")  # file order


# --------------------------------------------------------------------------- clean

BLOCKS, DOCS_PER_BLOCK = 6, 30
BOILERPLATE = ["This page is distributed under the Example Public License, version two.",
               "Subscribe to our newsletter for more plays, poems and sonnets every week.",
               "All performances of this text require the permission of the theatre."]
CLEAN = {"workers": 2, "quality": {"filters": ["word_count", "alpha_words"]}, "line_dedupe": {"min_docs": 5},
         "near_dedupe": {"threshold": 0.45, "containment": 0.8, "candidate_threshold": 0.3}}


def merged_corpus(words: list[str]) -> tuple[list[list[Document]], dict]:
    """Six blocks of documents with planted copies; returns the blocks and what clean must decide.

    - boilerplate: line k of BOILERPLATE opens every document whose number is k mod 4 (k < 3);
    - exact copies: 4 documents of block 0 again in block 3, and all of block 5 copies blocks 1 and 2,
      so block 5 keeps nothing;
    - near copies: 4 documents of block 1 with 5% of their words replaced, in block 4;
    - the chain: A = P (block 0), B = P + Q (block 2), C = Q (block 4). B shares half its text with each:
      Jaccard 1/2 and containment 1 with both, while A and C share nothing. B goes, being like A; C
      stays, since the only document it is like was dropped.
    """
    rng = random.Random(0)
    blocks: list[list[Document]] = []
    for b in range(BLOCKS):
        docs = []
        for i in range(DOCS_PER_BLOCK):
            n = b * DOCS_PER_BLOCK + i
            head = [BOILERPLATE[n % 4]] if n % 4 < 3 else []
            docs.append(Document(f"b{b}-d{i:02d}.txt", "prose", "\n".join(head + [prose(rng, words, 100)])))
        blocks.append(docs)
    for i in range(4):
        blocks[3][10 + i] = Document(f"exact{i}.txt", "copy", blocks[0][10 + i].text)
        near = blocks[1][20 + i]
        blocks[4][20 + i] = Document(f"near{i}.txt", "copy", edited(near.text, rng, 0.05))
    blocks[5] = [Document(f"late{i:02d}.txt", "copy", d.text) for i, d in enumerate(blocks[1][:15] + blocks[2][15:])]
    mail = blocks[3][0]  # personal data, replaced by its tags, counted in the block's report
    blocks[3][0] = Document(mail.id, mail.source, mail.text + " Write to jane.doe@example.com or call (555) 123-4567.")
    p, q = prose(rng, words, 120), prose(rng, words, 120)
    blocks[0][5], blocks[2][5], blocks[4][5] = (Document("A.txt", "chain", p), Document("B.txt", "chain", f"{p}\n{q}"),
                                                Document("C.txt", "chain", q))
    dropped = {d.id for d in blocks[3][10:14] + blocks[4][20:24] + blocks[5]} | {"B.txt"}
    kept = [d for docs in blocks for d in docs if d.id not in dropped]
    expected = {"exact": 4 + DOCS_PER_BLOCK, "near": 4 + 1, "kept": [d.id for d in kept],
                "boilerplate_lines": sum(d.text.split("\n")[0] in BOILERPLATE for d in kept)}
    return blocks, expected


def write_parts(directory: Path, blocks: list[list[Document]], row_group_bytes: int) -> None:
    """Block b as part-<b>.parquet, in row groups of about row_group_bytes."""
    for b, docs in enumerate(blocks):
        with DocumentWriter(directory, block=b, row_group_bytes=row_group_bytes) as writer:
            for doc in docs:
                writer.write(doc)


def test_clean_on_a_cluster_makes_the_local_engines_decisions_and_bytes(tmp_path, monkeypatch, words):
    blocks, expected = merged_corpus(words)
    local, on_ray = both_engines(tmp_path, monkeypatch, lambda p: write_parts(p / clean_stage.IN_DIR, blocks, 5000),
                                 clean_stage, "clean", **CLEAN)
    assert_same_projects(local, on_ray)

    metrics = json.loads((on_ray / "metrics/clean.json").read_text())
    assert metrics["removed_documents_exact_duplicate"] == expected["exact"]
    assert metrics["removed_documents_near_duplicate"] == expected["near"]
    assert metrics["documents_out"] == len(expected["kept"])
    assert metrics["boilerplate_units_removed"] == expected["boilerplate_lines"]
    assert metrics["pii_email"] == 1 and metrics["pii_phone"] == 1
    out = on_ray / clean_stage.OUT_DIR
    kept = {doc.id: doc.text for doc in iter_documents(out)}
    assert list(kept) == expected["kept"]  # document order, across blocks
    assert "A.txt" in kept and "B.txt" not in kept and "C.txt" in kept
    assert not any(line in text for text in kept.values() for line in BOILERPLATE)
    # One part per block that keeps a document: block 5 held only copies.
    assert output_part_names(out) == [f"part-{b:05d}.parquet" for b in range(BLOCKS - 1)]
    assert "B.txt" in (on_ray / clean_stage.REPORT).read_text()  # the report names what was removed


# --------------------------------------------------------------------------- pack

def test_pack_on_a_cluster_writes_the_same_shards(tmp_path, monkeypatch, words):
    rng = random.Random(2)
    blocks = [[Document(f"b{b}-d{i:02d}.txt", "prose", prose(rng, words, 80)) for i in range(25)] for b in range(4)]
    blocks[2].append(Document("empty.txt", "edge", ""))
    blocks[3].append(Document("cjk.txt", "edge", "\u65e5\u672c\u8a9e"))
    learned = tmp_path / "tokenizer"  # one tokenizer for both projects, learned without Ray
    write_parts(learned / tokenizer_stage.IN_DIR, blocks, 4000)
    run_stage(learned, monkeypatch, tokenizer_stage, "tokenizer", None, vocab_size=400)

    def setup(project: Path) -> None:
        write_parts(project / pack_stage.IN_DIR, blocks, 4000)
        shutil.copytree(learned / tokenizer_stage.OUT_DIR, project / pack_stage.TOKENIZER_DIR)

    local, on_ray = both_engines(tmp_path, monkeypatch, setup, pack_stage, "pack", shard_tokens=1500,
                                 val_fraction=0.3)
    names = assert_same_projects(local, on_ray)
    assert "data/shards/meta.json" in names and "metrics/pack.json" in names
    for split in ("train", "val"):
        shards = [p.name for p in shard_paths(on_ray / pack_stage.OUT_DIR, split)]
        assert {name[len(split) + 1:][:5] for name in shards} == {f"{b:05d}" for b in range(4)}  # every block
    assert "train-00000-001.bin" in [p.name for p in shard_paths(on_ray / pack_stage.OUT_DIR, "train")]  # a roll-over
    meta = json.loads((on_ray / pack_stage.OUT_DIR / "meta.json").read_text())
    assert sum(meta["splits"][s]["documents"] for s in ("train", "val")) == 4 * 25 + 2
