"""Read raw input files (.txt, .md, .jsonl, .parquet, each optionally .gz) as documents.

Every problem with a file is either raised as a UserError naming the file or,
when the policy says skip, counted in `SourceStats`: nothing is dropped silently.
"""
from __future__ import annotations

import codecs
import collections
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Literal

import pyarrow.parquet as pq

from stages.lib.documents import Document
from stages.lib.errors import UserError

DocMode = Literal["file", "line", "paragraph"]
SNIFF_BYTES = 8192
CHUNK_BYTES = 1 << 20


@dataclass
class SourceStats:
    files_read: int = 0
    files_empty: int = 0
    files_skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    skipped_by_extension: collections.Counter = field(default_factory=collections.Counter)
    invalid_utf8: dict[str, int] = field(default_factory=dict)  # path -> invalid byte sequences
    bad_records: dict[str, int] = field(default_factory=dict)  # path -> skipped .jsonl/.parquet records
    documents: int = 0
    bytes: int = 0


@dataclass
class ReadOptions:
    doc_mode: DocMode = "file"
    text_field: str = "text"
    encoding_errors: Literal["replace", "skip", "error"] = "replace"
    bad_files: Literal["error", "skip"] = "error"


class BadFile(Exception):
    """A file that cannot be read as documents; handled by the bad_files policy."""


# --------------------------------------------------------------------------- discovery

def base_extension(path: Path) -> str:
    """'.txt' for 'a.txt' and 'a.txt.gz'; '' when there is none."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def find_input_files(input_dir: Path, extensions: list[str], stats: SourceStats) -> list[Path]:
    """All files under input_dir with an accepted extension, in a stable (sorted path) order."""
    if not input_dir.is_dir():
        raise UserError(f"merge.input_dir={input_dir} is not a directory: create it and put your text files there")
    accepted = {e.lower() for e in extensions}
    files = []
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(input_dir).parts):
            continue  # hidden files and folders (.gitkeep, .DS_Store, .git)
        ext = base_extension(path)
        if ext in accepted:
            files.append(path)
        else:
            stats.skipped_by_extension[ext or "(none)"] += 1
    if not files:
        raise UserError(f"no input files in {input_dir}: add files with extensions {', '.join(extensions)} "
                        f"(or change merge.extensions)")
    return files


# --------------------------------------------------------------------------- decoding

def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def count_invalid_utf8(path: Path) -> int:
    """Number of invalid UTF-8 sequences in the (decompressed) file, streamed in chunks."""
    invalid = 0

    def count(err: UnicodeDecodeError):
        nonlocal invalid
        invalid += 1
        return "\ufffd", err.end

    codecs.register_error("sources.count", count)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="sources.count")
    with _open_binary(path) as f:
        while chunk := f.read(CHUNK_BYTES):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    return invalid


def _sniff_binary(path: Path) -> None:
    with _open_binary(path) as f:
        head = f.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise BadFile("looks binary (it has NUL bytes; if it is UTF-16 text, convert it to UTF-8)")


def _open_text(path: Path, errors: str) -> IO[str]:
    # utf-8-sig drops a leading byte-order mark; newline="" keeps CRLF for clean to tidy.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors=errors, newline="")


# --------------------------------------------------------------------------- per-format readers

def _text_documents(path: Path, rel: str, mode: DocMode) -> Iterator[Document]:
    with _open_text(path, "replace") as f:
        if mode == "file":
            yield Document(rel, rel, f.read())
        elif mode == "line":
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    yield Document(f"{rel}#{lineno}", rel, line.rstrip("\r\n"))
        else:
            block: list[str] = []
            index = 0
            for line in f:
                if line.strip():
                    block.append(line)
                elif block:
                    index += 1
                    yield Document(f"{rel}#{index}", rel, "".join(block).rstrip("\r\n"))
                    block = []
            if block:
                yield Document(f"{rel}#{index + 1}", rel, "".join(block).rstrip("\r\n"))


def _jsonl_documents(path: Path, rel: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    with _open_text(path, "replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record[options.text_field] if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise ValueError(f"no string field {options.text_field!r}")
            except (ValueError, KeyError) as err:
                if options.bad_files == "error":
                    raise UserError(f"{path}:{lineno}: bad JSON record ({err}); fix the line, set "
                                    f"merge.text_field, or set merge.bad_files=skip to skip such records") from None
                stats.bad_records[rel] = stats.bad_records.get(rel, 0) + 1
                continue
            yield Document(f"{rel}#{lineno}", rel, text)


def _parquet_documents(path: Path, rel: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    with _open_binary(path) as raw:
        try:
            pf = pq.ParquetFile(raw)
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise BadFile(f"is not a readable Parquet file ({err})") from None
        if options.text_field not in pf.schema_arrow.names:
            raise BadFile(f"has no column {options.text_field!r} (columns: {', '.join(pf.schema_arrow.names)}); "
                          f"set merge.text_field")
        row = 0
        for batch in pf.iter_batches(columns=[options.text_field], batch_size=1024):
            for text in batch.column(0).to_pylist():
                row += 1
                if not isinstance(text, str):
                    stats.bad_records[rel] = stats.bad_records.get(rel, 0) + 1
                    continue
                yield Document(f"{rel}#{row}", rel, text)


# --------------------------------------------------------------------------- one file

def read_file(path: Path, rel: str, options: ReadOptions, stats: SourceStats) -> Iterator[Document]:
    """Documents of one input file, applying the encoding and bad-file policies."""
    try:
        if path.stat().st_size == 0:
            stats.files_empty += 1
            return
        ext = base_extension(path)
        if ext != ".parquet":
            _sniff_binary(path)
            invalid = count_invalid_utf8(path)
            if invalid:
                stats.invalid_utf8[rel] = invalid
                if options.encoding_errors == "error":
                    raise UserError(f"{path}: {invalid} invalid UTF-8 byte sequence(s); convert the file to UTF-8 "
                                    f"or set merge.encoding_errors to replace or skip")
                if options.encoding_errors == "skip":
                    stats.files_skipped[rel] = f"{invalid} invalid UTF-8 sequences"
                    return
        if ext == ".jsonl":
            docs = _jsonl_documents(path, rel, options, stats)
        elif ext == ".parquet":
            docs = _parquet_documents(path, rel, options, stats)
        else:
            docs = _text_documents(path, rel, options.doc_mode)
        for doc in docs:
            stats.documents += 1
            stats.bytes += len(doc.text.encode("utf-8"))
            yield doc
        stats.files_read += 1
    except (BadFile, OSError, EOFError, gzip.BadGzipFile) as err:
        reason = str(err) if isinstance(err, BadFile) else f"cannot be read ({err})"
        if options.bad_files == "error":
            raise UserError(f"{path} {reason}; remove it or set merge.bad_files=skip") from None
        stats.files_skipped[rel] = reason
