"""The Ray Data engine of merge, clean and pack writes the same bytes as the local engine, and fails clearly.

One local Ray instance with 2 CPUs serves the whole module (starting Ray costs
seconds); the stages see it running and leave it so. A stage run in a
subprocess starts and stops its own, as `dvc repro` does.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml

ray = pytest.importorskip("ray")

from stages import clean as clean_stage  # noqa: E402
from stages import merge as merge_stage  # noqa: E402
from stages import pack as pack_stage  # noqa: E402
from stages import tokenizer as tokenizer_stage  # noqa: E402
from stages.lib.data import sources  # noqa: E402
from stages.lib.data.cleaning import DocumentCleaner  # noqa: E402
from stages.lib.data.documents import Document, DocumentWriter, iter_documents, part_files  # noqa: E402
from stages.lib.data.packing import split_of  # noqa: E402
from stages.lib.data.shards import open_tokens, shard_paths  # noqa: E402
from stages.lib.engines.ray_session import start_ray  # noqa: E402
from stages.lib.errors import UserError  # noqa: E402
from stages.lib.params import PackParams  # noqa: E402
from stages.lib.tokens.tokenizer_adapter import load_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray instance per test

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    address = os.environ.pop("RAY_ADDRESS", None)  # a local instance, whatever the shell says
    start_ray(workers=2)
    yield
    ray.shutdown()
    if address is not None:
        os.environ["RAY_ADDRESS"] = address


def run_stage(project: Path, monkeypatch, stage, section: str, engine: str | None, **params) -> None:
    monkeypatch.chdir(project)
    section_params = params if engine is None else {**params, "engine": engine}
    Path("params.yaml").write_text(yaml.safe_dump({section: section_params}))
    stage.main()


def assert_same_files(a: Path, b: Path, *folders: str) -> int:
    """Every file under each folder is byte for byte the same in projects a and b; returns the count."""
    count = 0
    for folder in folders:
        names = sorted(p.relative_to(a).as_posix() for p in (a / folder).rglob("*") if p.is_file())
        assert names == sorted(p.relative_to(b).as_posix() for p in (b / folder).rglob("*") if p.is_file())
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"
        count += len(names)
    return count


def both_engines(tmp_path: Path, monkeypatch, setup, stage, section: str, **params) -> tuple[Path, Path]:
    projects = []
    for engine in ("local", "ray"):
        project = tmp_path / engine
        project.mkdir()
        setup(project)
        run_stage(project, monkeypatch, stage, section, engine, **params)
        projects.append(project)
    return projects[0], projects[1]


# --------------------------------------------------------------------------- merge

def raw_files(project: Path, sample_text: str) -> None:
    raw = project / "data/raw"
    (raw / "plays").mkdir(parents=True)
    for i in range(5):
        (raw / "plays" / f"act{i}.txt").write_text(sample_text[i * 2000:(i + 1) * 2000], encoding="utf-8")
    (raw / "notes.md").write_text("# Notes\n\nSome notes.\n")
    (raw / "records.jsonl").write_text('{"text": "one"}\n{"bad": 1}\nnot json\n{"text": "two \\ud83d"}\n')
    (raw / "zipped.txt.gz").write_bytes(gzip.compress(b"gzipped text\n"))
    (raw / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))  # invalid UTF-8, replaced
    (raw / "empty.txt").write_text("")
    (raw / "blob.txt").write_bytes(b"\x00\x01binary")  # skipped: merge.bad_files=skip
    (raw / "image.png").write_bytes(b"\x89PNG")  # another extension: counted


def test_merge_writes_the_same_documents_and_metrics(tmp_path, monkeypatch, sample_text):
    local, on_ray = both_engines(tmp_path, monkeypatch, lambda p: raw_files(p, sample_text), merge_stage, "merge",
                                 bad_files="skip")
    assert assert_same_files(local, on_ray, "data/interim/merged", "metrics") == 2
    assert b'"bad_records": 2' in (on_ray / "metrics/merge.json").read_bytes()


def test_merge_in_blocks_writes_a_part_per_block_the_same_on_both_engines(tmp_path, monkeypatch, sample_text):
    """Ray tasks write their blocks' parts themselves; the local engine's process pool writes the same files."""
    monkeypatch.setattr(sources, "BLOCK_BYTES", 2000)  # a block per act (2,000 characters), notes with records
    local, on_ray = both_engines(tmp_path, monkeypatch, lambda p: raw_files(p, sample_text), merge_stage, "merge",
                                 bad_files="skip")
    assert assert_same_files(local, on_ray, "data/interim/merged", "metrics") > 6
    names = [p.name for p in part_files(on_ray / "data/interim/merged")]
    assert names[:3] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    docs = [(d.id, d.text) for d in iter_documents(on_ray / "data/interim/merged")]
    assert [doc_id for doc_id, _ in docs] == sorted(doc_id for doc_id, _ in docs)  # file order, block after block
    one_block = tmp_path / "one"
    one_block.mkdir()
    raw_files(one_block, sample_text)
    monkeypatch.setattr(sources, "BLOCK_BYTES", 32 << 20)
    run_stage(one_block, monkeypatch, merge_stage, "merge", "ray", bad_files="skip")
    assert [(d.id, d.text) for d in iter_documents(one_block / "data/interim/merged")] == docs
    assert (one_block / "metrics/merge.json").read_bytes() == (on_ray / "metrics/merge.json").read_bytes()


def test_merge_of_only_empty_files_is_one_line_on_ray(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1)  # blocks: the blob, then the empty files (they add no bytes)
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        (raw / name).write_text("")
    (raw / "0-blob.txt").write_bytes(b"\x00binary")
    with pytest.raises(UserError, match=r"^no documents found in data/raw: every file was empty or skipped "
                                        r"\(skipped: \{'0-blob.txt': 'looks binary"):
        run_stage(tmp_path, monkeypatch, merge_stage, "merge", "ray", bad_files="skip")
    assert list((tmp_path / "data/interim").iterdir()) == []  # no output, no temporary folder


# --------------------------------------------------------------------------- clean

BOILERPLATE = "This file is distributed under the Example Public License v2."


def edited(text: str, rng: random.Random, share: float) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(share * len(words))):
        words[i] = f"w{rng.randrange(10**6)}"
    return " ".join(words)


def merged_documents(sample_text: str) -> list[Document]:
    """Distinct scenes with a boilerplate line, exact and near copies (a chain of ever more edited
    copies, so which earlier document is kept decides), PII, junk: in many small row groups."""
    rng = random.Random(0)
    lines = [line for line in sample_text.splitlines() if line.strip()]
    scenes = [" ".join(lines[i:i + 12]) for i in range(0, 120, 12)]
    docs = [Document(f"scene{i}.txt", "play", f"{BOILERPLATE}\n{scene}") for i, scene in enumerate(scenes)]
    docs.append(Document("copy.txt", "copy", docs[2].text.replace("\n", "\r\n")))  # exact, after tidying
    chain = scenes[4]
    for step in range(5):  # each copy edits a sixth of the words of the one before
        chain = edited(chain, rng, 1 / 6)
        docs.append(Document(f"edit{step}.txt", "edits", f"{BOILERPLATE}\n{chain}"))
    docs.append(Document("tail.txt", "copy", scenes[6][: len(scenes[6]) * 3 // 4]))  # contained in scene6
    docs.append(Document("mail.txt", "mail", scenes[7] + " Write to jane.doe@example.com or call (555) 123-4567."))
    docs.append(Document("numbers.txt", "junk", "1 2 3 4 5 6 7 8 9 10 " * 20))
    docs.append(Document("late-copy.txt", "copy", docs[0].text))  # exact, many row groups later
    rng.shuffle(docs[10:])
    return docs


def write_merged(project: Path, docs: list[Document], blocks: int = 1) -> None:
    per_block = -(-len(docs) // blocks)
    for block in range(blocks):
        with DocumentWriter(project / clean_stage.IN_DIR, block=block, row_group_bytes=2000) as writer:  # ~4 a group
            for doc in docs[block * per_block:(block + 1) * per_block]:
                writer.write(doc)


CLEAN = {"min_chars": 20, "quality": {"filters": ["alpha_words"]}, "line_dedupe": {"min_docs": 3}}


# --------------------------------------------------------------------------- pack

def clean_and_tokenizer(project: Path, monkeypatch, texts: list[str], tokenizer: Path | None) -> None:
    with DocumentWriter(project / pack_stage.IN_DIR, row_group_bytes=3000) as writer:
        for i, text in enumerate(texts):
            writer.write(Document(f"doc{i}.txt", "s", text))
    if tokenizer is None:
        run_stage(project, monkeypatch, tokenizer_stage, "tokenizer", None, vocab_size=400)
    else:
        shutil.copytree(tokenizer, project / pack_stage.TOKENIZER_DIR)


def test_pack_writes_the_same_shards(tmp_path, monkeypatch, sample_text):
    texts = [sample_text[i:i + 700] for i in range(0, 11_000, 500)] + ["", "\u65e5\u672c\u8a9e"]
    made: list[Path] = []

    def setup(project: Path) -> None:
        clean_and_tokenizer(project, monkeypatch, texts, made[0] / pack_stage.TOKENIZER_DIR if made else None)
        made.append(project)

    local, on_ray = both_engines(tmp_path, monkeypatch, setup, pack_stage, "pack", shard_tokens=1500,
                                 val_fraction=0.3)
    assert assert_same_files(local, on_ray, "data/shards", "metrics/pack.json") > 6  # several shards per split
    assert [p.name for p in shard_paths(on_ray / "data/shards", "train")][:2] == ["train-00000.bin",
                                                                                 "train-00000-001.bin"]


def test_pack_writes_the_same_shards_per_block(tmp_path, monkeypatch, sample_text):
    """Each clean part is a block: a Ray task writes its shards; the local engine writes the same files, and
    the shards read back in order hold every document's tokens in document order."""
    texts = [sample_text[i:i + 700] for i in range(0, 11_000, 250)]
    made: list[Path] = []

    def setup(project: Path) -> None:
        for block, first in enumerate(range(0, len(texts), 15)):  # blocks 0-2, the first in two parts
            with DocumentWriter(project / pack_stage.IN_DIR, block=block, row_group_bytes=3000,
                                part_bytes=6000) as writer:
                for i, text in enumerate(texts[first:first + 15], first):
                    writer.write(Document(f"doc{i}.txt", "s", text))
        if made:
            shutil.copytree(made[0] / pack_stage.TOKENIZER_DIR, project / pack_stage.TOKENIZER_DIR)
        else:
            run_stage(project, monkeypatch, tokenizer_stage, "tokenizer", None, vocab_size=400)
        made.append(project)

    local, on_ray = both_engines(tmp_path, monkeypatch, setup, pack_stage, "pack", shard_tokens=1500,
                                 val_fraction=0.3)
    parts = part_files(on_ray / pack_stage.IN_DIR)
    assert [p.name for p in parts][:3] == [
        "part-00000.parquet", "part-00000-001.parquet", "part-00001.parquet"]  # blocks of pack 0, 1, 2
    assert assert_same_files(local, on_ray, "data/shards", "metrics/pack.json") > 12
    meta = json.loads((on_ray / "data/shards/meta.json").read_text())
    tok = load_tokenizer(on_ray / pack_stage.TOKENIZER_DIR)
    for split in ("train", "val"):
        paths = shard_paths(on_ray / "data/shards", split)
        names = [p.name for p in paths]
        assert meta["splits"][split]["shards"] == len(paths)
        if split == "train":  # (some blocks hold no val document)
            assert {f"train-{block:05d}.bin" for block in range(len(parts))} <= set(names)
            assert "train-00000-001.bin" in names  # a block rolls over to its next shard
        split_texts = [t for i, t in enumerate(texts) if split_of(f"doc{i}.txt", PackParams(val_fraction=0.3))
                       == split]
        tokens = np.concatenate([np.asarray(open_tokens(p)) for p in paths])
        expected = [token for text in split_texts for token in tok.encode(text) + [tok.eot_id]]
        np.testing.assert_array_equal(tokens, expected)


# --------------------------------------------------------------------------- failures

def test_a_failing_task_is_one_error_naming_the_stage(tmp_path, monkeypatch, sample_text):
    class Failing(DocumentCleaner):  # defined here, so Ray ships the class itself to its workers
        def clean_batch(self, batch):
            raise ValueError("planted failure")

    write_merged(tmp_path, merged_documents(sample_text))
    monkeypatch.setattr(clean_stage, "DocumentCleaner", Failing)
    with pytest.raises(UserError, match=r"^clean \(engine: ray\): a Ray task failed: ValueError: planted failure"):
        run_stage(tmp_path, monkeypatch, clean_stage, "clean", "ray", **CLEAN)
    assert not (tmp_path / clean_stage.OUT_DIR).exists()


def test_a_killed_worker_is_one_error_not_a_hang(tmp_path, monkeypatch, sample_text):
    class Killed(DocumentCleaner):
        def clean_batch(self, batch):
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would

    write_merged(tmp_path, merged_documents(sample_text)[:4])
    monkeypatch.setattr(clean_stage, "DocumentCleaner", Killed)
    start = time.monotonic()
    with pytest.raises(UserError, match=r"^clean \(engine: ray\): a Ray worker or node died"):
        run_stage(tmp_path, monkeypatch, clean_stage, "clean", "ray", **CLEAN)
    assert time.monotonic() - start < 60


def ray_processes_outside_this_test() -> set[int]:
    """Ray's processes (raylet, GCS, workers) that are not this test process's own instance."""
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    found = set()
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        text = " ".join([proc.info["name"] or ""] + (proc.info["cmdline"] or []))
        if proc.info["pid"] not in ours and ("raylet" in text or "gcs_server" in text or "ray::" in text):
            found.add(proc.info["pid"])
    return found


def test_a_stage_process_reports_a_worker_error_in_one_line_and_leaves_no_ray_behind(tmp_path, sample_text):
    raw_files(tmp_path, sample_text)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"merge": {"engine": "ray"}}))  # bad_files: error
    before = ray_processes_outside_this_test()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.merge"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: merge (engine: ray): ") and "blob.txt looks binary" in last, proc.stderr
    assert "Traceback" not in proc.stderr
    deadline = time.monotonic() + 15
    while (left := ray_processes_outside_this_test() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes outlived the stage: {left}"
