"""Bad input as a user meets it: each is a clear one-line error (exit 2, no traceback), or skipped and counted."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from stages import clean as clean_stage
from stages import merge as merge_stage
from stages.lib.data import sources
from stages.lib.data.documents import iter_documents
from stages.lib.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PROSE = "Now is the winter of our discontent made glorious summer by this sun of York.\n" * 5


def cli(project: Path, stage: str, params: dict) -> subprocess.CompletedProcess:
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "%|" not in line]  # tqdm aside
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def raw_dir(project: Path) -> Path:
    raw = project / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "good.txt").write_text(PROSE)
    return raw


def test_binary_file(tmp_path):
    (raw_dir(tmp_path) / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    assert_one_line_error(cli(tmp_path, "merge", {}), "image.txt", "binary", "merge.bad_files")


def test_invalid_utf8_with_error_policy(tmp_path):
    (raw_dir(tmp_path) / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    proc = cli(tmp_path, "merge", {"merge": {"encoding_errors": "error"}})
    assert_one_line_error(proc, "latin1.txt", "invalid UTF-8", "merge.encoding_errors")


def test_invalid_utf8_replaced_by_default_and_counted(tmp_path):
    (raw_dir(tmp_path) / "latin1.txt").write_bytes(("caf\xe9 " * 40).encode("latin-1"))
    proc = cli(tmp_path, "merge", {})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics/merge.json").read_text())
    assert metrics["invalid_utf8_files"] == 1 and metrics["invalid_utf8_sequences"] == 40
    assert "latin1.txt: 40 invalid UTF-8" in proc.stdout


def test_corrupt_parquet_row_group_is_one_line(tmp_path):
    """pyarrow's message spans lines; the stage's error must not."""
    path = raw_dir(tmp_path) / "c.parquet"
    pq.write_table(pa.table({"text": [PROSE] * 20}), path, row_group_size=10, compression="none")
    data = bytearray(path.read_bytes())
    start = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    assert_one_line_error(cli(tmp_path, "merge", {}), "c.parquet cannot be read", "merge.bad_files")


def test_odd_names_and_lone_surrogates_are_kept_and_warned(tmp_path):
    raw = raw_dir(tmp_path)
    (raw / os.fsdecode(b"caf\xe9.txt")).write_text(PROSE)  # a Latin-1 file name
    (raw / "half.jsonl").write_text('{"text": "a half emoji \\ud83d from a scraped page"}\n')
    proc = cli(tmp_path, "merge", {})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "warning: caf\\xe9.txt: the file name is not valid UTF-8" in proc.stdout
    assert "warning: half.jsonl: 1 invalid UTF-8 sequence(s) (replace)" in proc.stdout
    ids = [d.id for d in iter_documents(tmp_path / "data/interim/merged")]
    assert ids == ["caf\\xe9.txt", "good.txt", "half.jsonl#1"]


def test_unreadable_file(tmp_path, monkeypatch):
    raw = raw_dir(tmp_path)
    (raw / "locked.txt").write_text(PROSE)
    real_open = sources._open_binary

    def deny(path):  # root reads any file, so unreadability is simulated
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path)

    monkeypatch.setattr(sources, "_open_binary", deny)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({}))
    with pytest.raises(UserError, match="locked.txt cannot be read .*Permission denied.*merge.bad_files=skip"):
        merge_stage.main()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"merge": {"bad_files": "skip"}}))
    merge_stage.main()
    metrics = json.loads((tmp_path / "metrics/merge.json").read_text())
    assert metrics["files_skipped"] == 1 and metrics["documents"] == 1


@pytest.mark.parametrize("merge_limit", [None, 0])
def test_100_mb_single_line(tmp_path, monkeypatch, merge_limit):
    """One enormous line: skipped by merge as it is read (merge.max_doc_chars), or, with that limit off,
    merged as one document and dropped by clean.max_chars; counted either way."""
    raw = raw_dir(tmp_path)
    with gzip.open(raw / "huge.txt.gz", "wt", encoding="utf-8", compresslevel=1) as f:
        chunk = "word " * 200_000  # 1 MB
        for _ in range(100):
            f.write(chunk)
        f.write("\n")
    monkeypatch.chdir(tmp_path)
    merge = {"doc_mode": "line"} if merge_limit is None else {"doc_mode": "line", "max_doc_chars": merge_limit}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"merge": merge,
                                                          "clean": {"min_chars": 10, "workers": 1,
                                                                    "quality": {"filters": []}}}))
    merge_stage.main()
    merged = json.loads((tmp_path / "metrics/merge.json").read_text())
    if merge_limit is None:
        assert merged["documents"] == 5 and merged["documents_too_long"] == 1
        assert merged["bytes"] < 1000
    else:
        assert merged["documents"] == 6 and merged["bytes"] > 100_000_000
    clean_stage.main()
    cleaned = json.loads((tmp_path / "metrics/clean.json").read_text())
    assert cleaned.get("removed_documents_too_long", 0) == (0 if merge_limit is None else 1)
    assert all(len(d.text) < 100 for d in iter_documents(clean_stage.OUT_DIR))


def test_model_params_inconsistent(tmp_path):
    proc = cli(tmp_path, "train", {"model": {"n_embd": 100, "n_head": 6}})
    assert_one_line_error(proc, "model.n_embd=100 is not divisible by model.n_head=6")


def test_unknown_tokenizer_kind(tmp_path):
    proc = cli(tmp_path, "tokenizer", {"tokenizer": {"kind": "wordpiece"}})
    assert_one_line_error(proc, "tokenizer.kind='wordpiece'", "bpe", "sentencepiece_unigram")


def test_stage_before_its_input_exists(tmp_path):
    assert_one_line_error(cli(tmp_path, "pack", {}), "run the tokenizer stage first")


def test_generate_refuses_zero_samples(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.generate", "--num-samples", "0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, "--num-samples=0 must be >= 1")


@pytest.mark.parametrize("stage", ["merge", "clean", "pack"])
def test_a_ray_engine_without_ray_installed_is_one_line(stage, monkeypatch):
    import importlib.util

    from stages.lib.engines import require

    real = importlib.util.find_spec
    monkeypatch.setattr(require.importlib.util, "find_spec", lambda name: None if name == "ray" else real(name))
    module = __import__(f"stages.{stage}", fromlist=["engine"])
    with pytest.raises(UserError, match=rf"{stage}\.engine: ray needs Ray.*pip install 'ray\[data\]"):
        module.engine("ray")
    assert module.engine("local").__name__.endswith(f"local_{stage}")
