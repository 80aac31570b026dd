"""Raw input files to documents: formats, doc modes, policies for bad files, and the merge stage."""
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

from stages import merge
from stages.lib.data import sources
from stages.lib.data.documents import iter_documents, part_files
from stages.lib.data.sources import SourceStats, base_extension, file_blocks, find_input_files, read_file
from stages.lib.errors import UserError
from stages.lib.params import MergeParams


def read(path: Path, rel: str | None = None, **options) -> tuple[list, SourceStats]:
    stats = SourceStats()
    docs = list(read_file(path, rel or path.name, MergeParams(**options), stats))
    return docs, stats


def write_parquet(path: Path, columns: dict) -> None:
    pq.write_table(pa.table(columns), path)


def pq_bytes(tmp_path: Path, columns: dict) -> bytes:
    write_parquet(tmp_path / "tmp.parquet", columns)
    return (tmp_path / "tmp.parquet").read_bytes()


def setup_project(root: Path, files: dict[str, bytes | str], **merge_params) -> None:
    """A project folder: params.yaml with a merge section and data/raw holding `files`."""
    params = {"merge": {**MergeParams().__dict__, **merge_params}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    for rel, content in files.items():
        path = raw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)


def run_merge(root: Path, monkeypatch, files: dict, **merge_params) -> tuple[list, dict]:
    setup_project(root, files, **merge_params)
    monkeypatch.chdir(root)
    merge.main()
    docs = list(iter_documents(root / "data" / "interim" / "merged"))
    metrics = json.loads((root / "metrics" / "merge.json").read_text())
    return docs, metrics


# --------------------------------------------------------------------------- doc modes

def test_doc_mode_file(tmp_path, monkeypatch):
    docs, metrics = run_merge(tmp_path, monkeypatch, {
        "b.txt": "Second file.\nTwo lines.\n",
        "a/c.md": "# Title\n\nBody ü\n",
    })
    assert [(d.id, d.source, d.text) for d in docs] == [
        ("a/c.md", "a/c.md", "# Title\n\nBody ü\n"),
        ("b.txt", "b.txt", "Second file.\nTwo lines.\n"),
    ]
    assert metrics["documents"] == 2 and metrics["files_read"] == 2
    assert metrics["bytes"] == sum(len(d.text.encode("utf-8")) for d in docs)


def test_doc_mode_line(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes(b"one\n\ntwo  \r\n   \nthree")
    docs, stats = read(path, "dir/l.txt", doc_mode="line")
    assert [(d.id, d.source, d.text) for d in docs] == [
        ("dir/l.txt#1", "dir/l.txt", "one"),
        ("dir/l.txt#3", "dir/l.txt", "two  "),
        ("dir/l.txt#5", "dir/l.txt", "three"),
    ]
    assert stats.documents == 3 and stats.files_read == 1


def test_doc_mode_paragraph(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"\np1 a\np1 b\n\n\n\np2\r\n  \r\np3 a\np3 b\n")
    docs, _ = read(path, "p.txt", doc_mode="paragraph")
    assert [(d.id, d.text) for d in docs] == [
        ("p.txt#1", "p1 a\np1 b"),
        ("p.txt#2", "p2"),
        ("p.txt#3", "p3 a\np3 b"),
    ]


def test_doc_mode_paragraph_last_block_without_newline(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("first\n\nsecond")
    docs, _ = read(path, doc_mode="paragraph")
    assert [(d.id, d.text) for d in docs] == [("p.txt#1", "first"), ("p.txt#2", "second")]


# --------------------------------------------------------------------------- formats

def test_jsonl_text_field(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"text": "hello", "id": 7}), "", json.dumps({"text": "wörld 😀"}, ensure_ascii=False)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs, stats = read(path, "r.jsonl")
    assert [(d.id, d.text) for d in docs] == [("r.jsonl#1", "hello"), ("r.jsonl#3", "wörld 😀")]
    assert stats.bad_records == {}

    other = tmp_path / "o.jsonl"
    other.write_text(json.dumps({"body": "in body"}) + "\n")
    docs, _ = read(other, "o.jsonl", text_field="body")
    assert [(d.id, d.text) for d in docs] == [("o.jsonl#1", "in body")]


def test_gzip_txt_and_jsonl(tmp_path, monkeypatch):
    docs, metrics = run_merge(tmp_path, monkeypatch, {
        "a.txt.gz": gzip.compress("gzipped text\r\nline 2\n".encode()),
        "b.jsonl.gz": gzip.compress(b'{"text": "first"}\n{"text": "second"}\n'),
        "c.TXT": "upper-case extension\n",
    })
    assert [(d.id, d.source, d.text) for d in docs] == [
        ("a.txt.gz", "a.txt.gz", "gzipped text\r\nline 2\n"),
        ("b.jsonl.gz#1", "b.jsonl.gz", "first"),
        ("b.jsonl.gz#2", "b.jsonl.gz", "second"),
        ("c.TXT", "c.TXT", "upper-case extension\n"),
    ]
    assert metrics["files_read"] == 3


def test_parquet_text_column(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(path, {"meta": [1, 2, 3, 4], "text": ["alpha", None, "gamma ü", ""]})
    with pytest.raises(UserError) as info:  # a null text is a bad record, as in .jsonl
        read(path)
    assert f"{path}: row 2" in str(info.value) and "merge.bad_files=skip" in str(info.value)
    docs, stats = read(path, "t.parquet", bad_files="skip")
    assert [(d.id, d.text) for d in docs] == [("t.parquet#1", "alpha"), ("t.parquet#3", "gamma ü"),
                                             ("t.parquet#4", "")]
    assert stats.bad_records == {"t.parquet": 1}  # the null is counted, not silently dropped


def test_parquet_without_text_column(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(path, {"content": ["x"]})
    with pytest.raises(UserError) as info:
        read(path)
    assert str(path) in str(info.value)
    assert "'text'" in str(info.value)
    docs, stats = read(path, "t.parquet", bad_files="skip")
    assert docs == [] and "t.parquet" in stats.files_skipped


def test_parquet_binary_column_is_decoded_as_utf8(tmp_path):
    path = tmp_path / "b.parquet"
    write_parquet(path, {"text": pa.array(["café".encode(), b"caf\xe9 \xff", None], pa.binary())})
    docs, stats = read(path, "b.parquet", bad_files="skip")
    assert [(d.id, d.text) for d in docs] == [("b.parquet#1", "café"), ("b.parquet#2", "caf\ufffd \ufffd")]
    assert stats.invalid_utf8 == {"b.parquet": 2} and stats.bad_records == {"b.parquet": 1}

    docs, stats = read(path, "b.parquet", encoding_errors="skip")  # like a text file: skipped whole
    assert docs == [] and "2 invalid UTF-8" in stats.files_skipped["b.parquet"]
    with pytest.raises(UserError, match="2 invalid UTF-8.*merge.encoding_errors"):
        read(path, encoding_errors="error")


def test_parquet_string_column_with_invalid_utf8(tmp_path):
    # Arrow does not check UTF-8 when reading a string column: Python would fail making the str.
    raw = pa.array([b"ok", b"caf\xe9"], pa.binary())
    path = tmp_path / "s.parquet"
    write_parquet(path, {"text": pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())})
    docs, stats = read(path, "s.parquet")
    assert [d.text for d in docs] == ["ok", "caf\ufffd"]
    assert stats.invalid_utf8 == {"s.parquet": 1}


def test_parquet_column_that_is_not_text(tmp_path):
    path = tmp_path / "n.parquet"
    write_parquet(path, {"text": [1, 2]})
    with pytest.raises(UserError, match="n.parquet has column 'text' of type int64, not text"):
        read(path)
    docs, stats = read(path, "n.parquet", bad_files="skip")
    assert docs == [] and "int64" in stats.files_skipped["n.parquet"]


def corrupt_parquet(path: Path) -> bytes:
    """Three row groups of 1024 rows (a batch read at a time); the pages of the last one are overwritten."""
    texts = [f"document {i}: now is the winter of our discontent" for i in range(3 * 1024)]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=1024, compression="none")
    data = bytearray(path.read_bytes())
    start = pq.ParquetFile(path).metadata.row_group(2).column(0).data_page_offset
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    return bytes(data)


def test_parquet_corrupt_part_way_is_skipped_whole(tmp_path, monkeypatch):
    corrupt = corrupt_parquet(tmp_path / "c.parquet")
    with pytest.raises(UserError) as info:
        read(tmp_path / "c.parquet")
    assert "c.parquet cannot be read" in str(info.value) and "\n" not in str(info.value)  # pyarrow's is multi-line

    docs, metrics = run_merge(tmp_path, monkeypatch, {"a.txt": "text\n", "c.parquet": corrupt}, bad_files="skip")
    assert [d.id for d in docs] == ["a.txt"]  # none of the two good row groups before the bad one
    assert metrics["files_skipped"] == 1 and metrics["files_read"] == 1 and metrics["documents"] == 1


def test_file_failing_after_documents_were_yielded_is_not_skipped(tmp_path, monkeypatch):
    # A file lost after the first pass: skipping it would leave part of it in the output, so it is refused.
    path = tmp_path / "t.parquet"
    write_parquet(path, {"text": ["one", "two"]})

    def fails_part_way(path, text_field):
        yield pa.array([b"one"], pa.large_binary())
        raise OSError("Input/output error")

    monkeypatch.setattr("stages.lib.data.sources._parquet_invalid_utf8", lambda path, text_field: 0)
    monkeypatch.setattr("stages.lib.data.sources._parquet_texts", fails_part_way)
    with pytest.raises(UserError, match="after 1 of its documents were written, so it cannot be skipped"):
        read(path, bad_files="skip")


def test_bom_is_stripped(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.txt").write_bytes(bom + "héllo\n".encode())
    (tmp_path / "b.jsonl").write_bytes(bom + b'{"text": "x"}\n')
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(bom + b"zipped"))
    assert read(tmp_path / "a.txt")[0][0].text == "héllo\n"
    assert read(tmp_path / "b.jsonl")[0][0].text == "x"  # a BOM would make line 1 invalid JSON
    assert read(tmp_path / "c.txt.gz")[0][0].text == "zipped"


def test_crlf_is_kept(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes(b"line 1\r\nline 2\r\n\r\nend\r")
    docs, _ = read(path)
    assert docs[0].text == "line 1\r\nline 2\r\n\r\nend\r"  # clean tidies it, merge does not


# --------------------------------------------------------------------------- discovery

def test_stable_sorted_order_hidden_and_other_extensions(tmp_path, monkeypatch):
    files = {  # written in reverse order: the result must not depend on directory order
        "z.txt": "z\n", "m/b.md": "mb\n", "m/a.txt": "ma\n", "a.txt": "a\n",
        ".hidden.txt": "hidden\n", ".git/x.txt": "git\n", "m/.DS_Store": "x", "m/.cache/y.txt": "y\n",
        "notes.csv": "a,b\n", "m/more.csv.gz": gzip.compress(b"c\n"), "README": "readme\n", "img.PNG": b"\x89PNG",
    }
    setup_project(tmp_path, dict(reversed(list(files.items()))))
    stats = SourceStats()
    found = find_input_files(tmp_path / "data" / "raw", MergeParams().extensions, stats)
    rels = [p.relative_to(tmp_path / "data" / "raw").as_posix() for p in found]
    assert rels == ["a.txt", "m/a.txt", "m/b.md", "z.txt"]
    assert dict(stats.skipped_by_extension) == {".csv": 2, "(none)": 1, ".png": 1}

    monkeypatch.chdir(tmp_path)
    merge.main()
    first = list(iter_documents("data/interim/merged"))
    assert [d.id for d in first] == rels
    merge.main()
    assert list(iter_documents("data/interim/merged")) == first
    metrics = json.loads(Path("metrics/merge.json").read_text())
    assert metrics["skipped_by_extension"] == {"(none)": 1, ".csv": 2, ".png": 1}


def test_symlinked_folders_and_files_are_read(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "b.txt").write_text("b\n")
    (outside / "deep" / "c.txt").write_text("c\n")
    (outside / "f.txt").write_text("f\n")
    setup_project(tmp_path, {"a.txt": "a\n", "z.txt": "z\n"})
    raw = tmp_path / "data/raw"
    (raw / "linked").symlink_to(outside)
    (raw / "copy").symlink_to(outside)  # the same folder twice: read once, under the first name
    (raw / "loop").symlink_to(raw)  # a link back up: no endless walk
    (raw / "m.txt").symlink_to(outside / "f.txt")
    stats = SourceStats()
    found = find_input_files(raw, [".txt"], stats)
    assert [p.relative_to(raw).as_posix() for p in found] == [
        "a.txt", "copy/b.txt", "copy/deep/c.txt", "copy/f.txt", "m.txt", "z.txt"]
    assert stats.warnings == [f"{raw}/linked: not read, it is the same folder as {raw}/copy",
                              f"{raw}/loop: not read, it is the same folder as {raw}"]

    monkeypatch.chdir(tmp_path)
    merge.main()
    assert [d.text for d in iter_documents("data/interim/merged")] == ["a\n", "b\n", "c\n", "f\n", "f\n", "z\n"]


def test_broken_symlink_is_refused_or_skipped(tmp_path, monkeypatch, capsys):
    setup_project(tmp_path, {"a.txt": "a\n"})
    (tmp_path / "data/raw/gone.txt").symlink_to(tmp_path / "nowhere.txt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="gone.txt is a broken symbolic link .*nowhere.txt.*merge.bad_files=skip"):
        merge.main()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"merge": {"bad_files": "skip"}}))
    merge.main()
    assert [d.id for d in iter_documents("data/interim/merged")] == ["a.txt"]
    assert json.loads(Path("metrics/merge.json").read_text())["files_skipped"] == 1
    assert "warning: skipped gone.txt: is a broken symbolic link" in capsys.readouterr().out


def test_file_name_that_is_not_utf8(tmp_path, monkeypatch, capsys):
    name = os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes: Python holds the \xe9 as a surrogate escape
    docs, metrics = run_merge(tmp_path, monkeypatch, {name: "kept\n", "d.txt": "d\n"})
    assert [(d.id, d.source, d.text) for d in docs] == [("caf\\xe9.txt", "caf\\xe9.txt", "kept\n"),
                                                       ("d.txt", "d.txt", "d\n")]
    assert metrics["files_read"] == 2
    assert "warning: caf\\xe9.txt: the file name is not valid UTF-8" in capsys.readouterr().out


@pytest.mark.parametrize("name, ext", [("a.txt", ".txt"), ("a.b.JSONL.gz", ".jsonl"), ("a.gz", ""),
                                       ("README", ""), ("x.tar.gz", ".tar")])
def test_base_extension(name, ext):
    assert base_extension(Path(name)) == ext


def test_empty_file_is_counted(tmp_path, monkeypatch):
    docs, metrics = run_merge(tmp_path, monkeypatch, {"empty.txt": b"", "full.txt": "text\n"})
    assert [d.id for d in docs] == ["full.txt"]
    assert metrics["files_empty"] == 1 and metrics["files_read"] == 1


# --------------------------------------------------------------------------- invalid UTF-8

# b"\xe9" (Latin-1 é) before a space, then b"\xff" and b"\xfe": three invalid sequences.
LATIN = b"caf\xe9 ok\n\xff\xfe end\n"


def test_invalid_utf8_replace_counts_sequences(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes(LATIN)
    docs, stats = read(path, "l.txt", encoding_errors="replace")
    assert docs[0].text == "caf\ufffd ok\n\ufffd\ufffd end\n"
    assert stats.invalid_utf8 == {"l.txt": 3}
    assert stats.files_skipped == {}


def test_invalid_utf8_skip_records_the_file(tmp_path, monkeypatch):
    docs, metrics = run_merge(tmp_path, monkeypatch, {"bad.txt": LATIN, "good.txt": "fine\n"},
                              encoding_errors="skip")
    assert [d.id for d in docs] == ["good.txt"]
    assert metrics["files_skipped"] == 1
    assert metrics["invalid_utf8_files"] == 1 and metrics["invalid_utf8_sequences"] == 3

    docs, stats = read(tmp_path / "data/raw/bad.txt", "bad.txt", encoding_errors="skip")
    assert docs == [] and "bad.txt" in stats.files_skipped and stats.invalid_utf8 == {"bad.txt": 3}


def test_invalid_utf8_error_names_the_file(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes(LATIN)
    with pytest.raises(UserError) as info:
        read(path, encoding_errors="error")
    assert str(path) in str(info.value)
    assert "3 invalid UTF-8" in str(info.value)


def test_invalid_utf8_split_across_read_chunks(tmp_path, monkeypatch):
    # A valid 2-byte character straddling the chunk boundary is not an error.
    monkeypatch.setattr("stages.lib.data.sources.CHUNK_BYTES", 4)
    path = tmp_path / "s.txt"
    path.write_bytes("abcéé".encode() + b"\xff")  # b"abc\xc3" | b"\xa9\xc3\xa9\xff"
    _, stats = read(path, "s.txt")
    assert stats.invalid_utf8 == {"s.txt": 1}


def test_jsonl_lone_surrogate_follows_encoding_errors(tmp_path):
    # json.loads accepts a half emoji escape, but the str it gives cannot be encoded as UTF-8.
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "half \\ud83d emoji"}\n{"text": "pair \\ud83d\\ude00"}\n')
    docs, stats = read(path, "s.jsonl")
    assert [d.text for d in docs] == ["ok", "half \ufffd emoji", "pair 😀"]
    assert stats.invalid_utf8 == {"s.jsonl": 1} and stats.bytes == sum(len(d.text.encode()) for d in docs)

    docs, stats = read(path, "s.jsonl", encoding_errors="skip")
    assert [d.text for d in docs] == ["ok", "half  emoji", "pair 😀"]
    assert stats.invalid_utf8 == {"s.jsonl": 1}

    with pytest.raises(UserError) as info:
        read(path, encoding_errors="error")
    assert f"{path}:2" in str(info.value) and "merge.encoding_errors" in str(info.value)


def test_merge_writes_jsonl_with_lone_surrogate(tmp_path, monkeypatch, capsys):
    docs, metrics = run_merge(tmp_path, monkeypatch, {"a.jsonl": '{"text": "broken \\udc00 tail"}\n'})
    assert [d.text for d in docs] == ["broken \ufffd tail"]
    assert metrics["invalid_utf8_sequences"] == 1
    assert "a.jsonl: 1 invalid UTF-8" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad files

def test_binary_file(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"PK\x03\x04\x00\x00binary\x00")
    with pytest.raises(UserError) as info:
        read(path)
    assert str(path) in str(info.value) and "binary" in str(info.value)
    docs, stats = read(path, "bin.txt", bad_files="skip")
    assert docs == [] and "binary" in stats.files_skipped["bin.txt"]


def test_binary_file_skipped_by_merge(tmp_path, monkeypatch):
    docs, metrics = run_merge(tmp_path, monkeypatch, {"a.txt": "text\n", "b.txt": "utf-16".encode("utf-16-le")},
                              bad_files="skip")
    assert [d.id for d in docs] == ["a.txt"]
    assert metrics["files_skipped"] == 1 and metrics["files_read"] == 1


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "c.txt.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(UserError, match="c.txt.gz"):
        read(path)
    docs, stats = read(path, "c.txt.gz", bad_files="skip")
    assert docs == [] and "c.txt.gz" in stats.files_skipped


def test_jsonl_broken_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "ok 1"}\n{"text": "unterminated\n{"other": "no text"}\n{"text": "ok 4"}\n')
    with pytest.raises(UserError) as info:
        read(path)
    assert f"{path}:2" in str(info.value)
    docs, stats = read(path, "r.jsonl", bad_files="skip")
    assert [(d.id, d.text) for d in docs] == [("r.jsonl#1", "ok 1"), ("r.jsonl#4", "ok 4")]
    assert stats.bad_records == {"r.jsonl": 2}


def test_jsonl_record_without_text_field(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(UserError) as info:
        read(path)
    assert f"{path}:2" in str(info.value) and "'text'" in str(info.value)


def test_jsonl_nested_too_deep_is_a_bad_record(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "ok"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(UserError) as info:
        read(path)
    assert f"{path}:2" in str(info.value) and "recursion" in str(info.value)
    docs, stats = read(path, "r.jsonl", bad_files="skip")
    assert [d.text for d in docs] == ["ok"] and stats.bad_records == {"r.jsonl": 1}


def test_merge_counts_and_warns_about_bad_records(tmp_path, monkeypatch, capsys):
    docs, metrics = run_merge(tmp_path, monkeypatch, {
        "r.jsonl": '{"text": "a"}\nnot json\n',
        "t.parquet": pq_bytes(tmp_path, {"text": ["b", None, None]}),
    }, bad_files="skip")
    assert [d.text for d in docs] == ["a", "b"]
    assert metrics["bad_records"] == 3
    out = capsys.readouterr().out
    assert "warning: r.jsonl: skipped 1 bad record" in out and "warning: t.parquet: skipped 2 bad record" in out


# --------------------------------------------------------------------------- blocks

def test_file_blocks_group_consecutive_files_of_about_block_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 100)
    for name, size in [("a.txt", 60), ("b.txt", 50), ("c.txt", 120), ("d.txt", 10), ("e.txt", 10)]:
        (tmp_path / name).write_text("x" * size)
    (tmp_path / "f.txt").symlink_to(tmp_path / "nowhere.txt")  # counted by read_file, not resolved here
    files = sorted(tmp_path.iterdir())
    blocks = file_blocks(files, tmp_path, SourceStats())
    # A block closes once it reaches BLOCK_BYTES: 60+50, then 120 alone, then what is left.
    assert [(b.index, b.rels) for b in blocks] == [(0, ["a.txt", "b.txt"]), (1, ["c.txt"]),
                                                 (2, ["d.txt", "e.txt", "f.txt"])]
    assert blocks[2].paths[-1] == str(tmp_path / "f.txt") and all(Path(p).is_absolute() for p in blocks[0].paths)


def mixed_raw(tmp_path: Path) -> dict:
    """Files of every kind and problem: counted, warned about and skipped per file, in several blocks."""
    return {f"{i:02d}.txt": f"text {i} " * 30 + "\n" for i in range(8)} | {
        "03-empty.txt": b"", "04-empty.txt": b"",
        "05-latin1.txt": "caf\xe9\n".encode("latin-1"),
        "06-blob.txt": b"\x00\x01binary",
        "07-records.jsonl": '{"text": "a"}\nnot json\n{"text": "b"}\n',
        "08-table.parquet": pq_bytes(tmp_path, {"text": ["c", None, "d"]}),
    }


def test_merge_in_blocks_writes_a_part_per_block_and_the_same_documents_metrics_and_warnings(
        tmp_path, monkeypatch, capsys):
    """Blocks are written side by side (a process pool) into their own parts; read back in order they are
    the documents of one block, and the counts add up to the same metrics and warnings."""
    files = mixed_raw(tmp_path)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one_docs, one_metrics = run_merge(tmp_path / "one", monkeypatch, files, bad_files="skip")
    one_out = capsys.readouterr().out.replace("\r", "\n").splitlines()
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1)  # a block per file
    docs, metrics = run_merge(tmp_path / "many", monkeypatch, files, bad_files="skip")
    out = capsys.readouterr().out.replace("\r", "\n").splitlines()

    assert [p.name for p in part_files(tmp_path / "one/data/interim/merged")] == ["part-00000.parquet"]
    # Blocks: 00, 01, 02, 03-empty + 03 (an empty file adds no bytes), 04-empty + 04, 05-latin1, 05, 06-blob, ...
    blocks = file_blocks(sorted(Path("data/raw").iterdir()), Path("data/raw"), SourceStats())
    assert len(blocks) == 12 and blocks[7].rels == ["06-blob.txt"]  # skipped: block 7 writes no part
    assert [p.name for p in part_files(tmp_path / "many/data/interim/merged")] == [
        f"part-{i:05d}.parquet" for i in range(12) if i != 7]
    assert docs == one_docs and metrics == one_metrics
    assert metrics["files_empty"] == 2 and metrics["files_skipped"] == 1 and metrics["bad_records"] == 2
    warnings = [line for line in out if line.startswith("warning")]
    assert warnings == [line for line in one_out if line.startswith("warning")] and len(warnings) == 4


def test_an_error_in_a_later_block_is_one_line_and_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1)
    setup_project(tmp_path, mixed_raw(tmp_path))  # bad_files: error
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"06-blob.txt looks binary .*merge.bad_files=skip$"):
        merge.main()
    assert list((tmp_path / "data" / "interim").iterdir()) == []  # no output, no temporary folder


# --------------------------------------------------------------------------- no input

def test_empty_input_dir(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(UserError, match="no input files"):
        find_input_files(tmp_path / "raw", [".txt"], SourceStats())


def test_missing_input_dir(tmp_path):
    with pytest.raises(UserError, match="merge.input_dir"):
        find_input_files(tmp_path / "nope", [".txt"], SourceStats())


def test_only_other_extensions(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.csv").write_text("x")
    stats = SourceStats()
    with pytest.raises(UserError):
        find_input_files(tmp_path / "raw", [".txt"], stats)
    assert stats.skipped_by_extension == {".csv": 1}


@pytest.mark.parametrize("block_bytes", [sources.BLOCK_BYTES, 1])
def test_merge_with_only_empty_files_leaves_no_output(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(sources, "BLOCK_BYTES", block_bytes)  # 1: a block per file
    setup_project(tmp_path, {"a.txt": b"", "b.txt": b"", "c.txt": b""})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="^no documents found in data/raw: every file was empty or skipped"):
        merge.main()
    assert not (tmp_path / "data" / "interim" / "merged").exists()
    assert list((tmp_path / "data" / "interim").iterdir()) == []  # no temporary folder left


def test_merge_cli_empty_raw_exits_2_with_one_line(tmp_path, project_root):
    setup_project(tmp_path, {})
    env = {**os.environ, "PYTHONPATH": str(project_root)}
    result = subprocess.run([sys.executable, "-m", "stages.merge"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("bad_files", ["error", "skip"])
def test_a_folder_that_cannot_be_listed_is_refused_or_counted(tmp_path, monkeypatch, bad_files):
    """(Simulated: the tests may run as root, who can list anything.) os.walk alone would skip it silently."""
    raw = tmp_path / "raw"
    (raw / "locked").mkdir(parents=True)
    (raw / "a.txt").write_text("text")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    stats = SourceStats()
    if bad_files == "error":
        with pytest.raises(UserError, match="locked: the folder cannot be listed .Permission denied."):
            find_input_files(raw, [".txt"], stats, bad_files)
    else:
        assert find_input_files(raw, [".txt"], stats, bad_files) == [raw / "a.txt"]
        assert stats.files_skipped == {str(raw / "locked"): "the folder cannot be listed (Permission denied)"}


# --------------------------------------------------------------------------- documents over max_doc_chars

LONG = "x" * 5000


@pytest.mark.parametrize("mode, text, kept", [
    ("file", LONG, []),
    ("line", f"short one\n{LONG}\nshort two\n", ["short one", "short two"]),
    ("line", f"short one\r\n{LONG}\r\nshort two", ["short one", "short two"]),
    ("paragraph", f"para one\n\n{LONG}\nmore\n\npara two\n", ["para one", "para two"]),
    ("paragraph", "a" * 600 + "\n" + "b" * 600 + "\n\nok\n", ["ok"]),  # long only as a block
])
def test_documents_over_the_limit_are_skipped_and_counted(tmp_path, mode, text, kept):
    path = tmp_path / "a.txt"
    path.write_text(text)
    docs, stats = read(path, doc_mode=mode, max_doc_chars=1000)
    assert [d.text for d in docs] == kept
    assert stats.too_long == {"a.txt": 1}


def test_a_document_exactly_at_the_limit_is_kept(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("y" * 1000 + "\n" + "z" * 999)
    docs, stats = read(path, doc_mode="line", max_doc_chars=1000)
    assert [len(d.text) for d in docs] == [1000, 999] and not stats.too_long


def test_long_jsonl_and_parquet_records_are_skipped(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"text": LONG}) + "\n" + json.dumps({"text": "fine"}) + "\n")
    docs, stats = read(jsonl, max_doc_chars=1000)
    assert [d.text for d in docs] == ["fine"] and stats.too_long == {"a.jsonl": 1}
    parquet = tmp_path / "b.parquet"
    write_parquet(parquet, {"text": [LONG, "fine"]})
    docs, stats = read(parquet, max_doc_chars=1000)
    assert [d.text for d in docs] == ["fine"] and stats.too_long == {"b.parquet": 1}


@pytest.mark.parametrize("mode", ["file", "line", "paragraph"])
def test_a_huge_one_line_file_is_never_held_whole(tmp_path, mode):
    # The 300 MB one-line file, scaled down: 40 MB read under a 1 MB limit.
    import tracemalloc
    path = tmp_path / "one-line.txt.gz"
    with gzip.open(path, "wt", compresslevel=1) as f:
        for _ in range(40):
            f.write("word " * 200_000)
    tracemalloc.start()
    try:
        docs, stats = read(path, doc_mode=mode, max_doc_chars=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert docs == [] and stats.too_long == {"one-line.txt.gz": 1}
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB while reading a 40 MB line"


def test_merge_warns_about_and_counts_skipped_long_documents(tmp_path):
    setup_project(tmp_path, {"big.txt": LONG, "ok.txt": "fine text"}, max_doc_chars=1000)
    out = subprocess.run([sys.executable, "-m", "stages.merge"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.returncode == 0, out.stderr
    assert "big.txt: skipped 1 document(s) longer than merge.max_doc_chars=1,000" in out.stdout
    metrics = json.loads((tmp_path / "metrics/merge.json").read_text())
    assert metrics["documents_too_long"] == 1 and metrics["documents"] == 1


@pytest.mark.parametrize("mode", ["file", "line", "paragraph"])
def test_no_limit_keeps_every_document(tmp_path, mode):
    path = tmp_path / "a.txt"
    path.write_text(f"{LONG}\n")
    docs, stats = read(path, doc_mode=mode, max_doc_chars=0)
    assert [d.text.strip() for d in docs] == [LONG] and not stats.too_long
