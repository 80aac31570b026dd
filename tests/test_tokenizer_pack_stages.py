"""The tokenizer and pack stages on awkward input: samples too small to learn from, text a vocabulary can't spell."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from stages import pack as pack_stage
from stages import tokenizer as tokenizer_stage
from stages.lib.data.documents import Document, DocumentWriter
from stages.lib.engines import local_pack
from stages.lib.params import PackParams

ROOT = Path(__file__).resolve().parent.parent


def write_clean(project: Path, texts: list[str]) -> None:
    shutil.rmtree(project / tokenizer_stage.IN_DIR, ignore_errors=True)
    with DocumentWriter(project / tokenizer_stage.IN_DIR) as writer:
        for i, text in enumerate(texts):
            writer.write(Document(f"doc{i}.txt", f"doc{i}.txt", text))


def run_stage(project: Path, stage: str, **params) -> subprocess.CompletedProcess:
    (project / "params.yaml").write_text(yaml.safe_dump({stage: params}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=120)


def run_tokenizer(project: Path, texts: list[str], **params) -> subprocess.CompletedProcess:
    write_clean(project, texts)
    return run_stage(project, "tokenizer", **params)


def test_a_sample_with_no_text_is_refused_naming_train_bytes(tmp_path, sample_text):
    """1 KB asked of a corpus cut into 64K-character chunks, each kept whole or not at all: none is kept."""
    proc = run_tokenizer(tmp_path, [sample_text * 6] * 3, train_bytes=1000, vocab_size=500)
    assert proc.returncode == 2, proc.stderr
    assert "error: tokenizer.train_bytes=1000 sampled no text" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / tokenizer_stage.OUT_DIR).exists()


def test_a_vocabulary_smaller_than_asked_is_warned_about_and_bytes_per_token_measured(tmp_path, sample_text):
    proc = run_tokenizer(tmp_path, [sample_text[:3000]], vocab_size=4000)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / tokenizer_stage.METRICS).read_text())
    assert metrics["vocab_size"] < 4000
    assert f"learned {metrics['vocab_size']} tokens, fewer than tokenizer.vocab_size=4000" in proc.stderr
    assert metrics["bytes_per_token"] > 1.0


def test_pack_counts_the_bytes_of_text_the_vocabulary_cannot_spell_and_warns(tmp_path, sample_text):
    """Without byte fallback SentencePiece turns unseen characters into <unk>, a token of no known length:
    the byte counts (the denominator of bits per byte) come from the text itself."""
    proc = run_tokenizer(tmp_path, [sample_text], kind="sentencepiece_unigram", vocab_size=300, byte_fallback=False)
    assert proc.returncode == 0, proc.stderr
    texts = [f"{sample_text[:2000]} \u65e5\u672c\u8a9e {i}" for i in range(8)]  # characters it never saw
    write_clean(tmp_path, texts)
    proc = run_stage(tmp_path, "pack", val_fraction=0.5)
    assert proc.returncode == 0, proc.stderr
    assert "tokens are <unk>" in proc.stderr and "tokenizer.byte_fallback" in proc.stderr
    metrics = json.loads((tmp_path / pack_stage.METRICS).read_text())
    assert metrics["train_bytes"] + metrics["val_bytes"] == sum(len(t.encode("utf-8")) for t in texts)


def test_pack_keeps_empty_documents_after_the_last_full_batch(tmp_path, monkeypatch):
    """(Possible with clean.min_chars: 0 and no quality filters.) Each is a document: its end-of-text token."""
    write_clean(tmp_path, ["some text", "", ""])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(local_pack, "BATCH_CHARS", 5)  # a batch is full after the first document
    batches = list(local_pack.split_batches(pack_stage.IN_DIR / "part-00000.parquet", PackParams(val_fraction=0.0)))
    assert [batch["train"] for batch in batches] == [["some text"], ["", ""]]
