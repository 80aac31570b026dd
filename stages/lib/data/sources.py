"""Read raw input files (.txt, .md, .jsonl, .parquet, each optionally .gz) as documents.

Every problem with a file is either raised as a UserError naming the file or,
when the policy says skip, counted in `SourceStats`: nothing is dropped silently.

Merge works in blocks: runs of consecutive input files of about BLOCK_BYTES
(`file_blocks`), each written to its own part files with its own counts
(`write_block`), so blocks can be written at once by processes or Ray tasks
and their counts added up in block order give what one pass would.
"""
from __future__ import annotations

import codecs
import collections
import errno
import gzip
import io
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from stages.lib.data.documents import Document, DocumentWriter
from stages.lib.errors import UserError
from stages.lib.params import MergeParams

SNIFF_BYTES = 8192
CHUNK_BYTES = 1 << 20
# json.loads turns an unpaired "\ud83d" escape into a lone surrogate: a character UTF-8 cannot encode.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
TEXT_TYPES = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())  # of a .parquet text column
# Input bytes (as stored) in one block. Small blocks cost per block (a Ray task took ~20 ms: 4,000 files
# of 50 KB as one task each took 78 s instead of 2 s); a block's documents are written one row group at a time.
BLOCK_BYTES = 32 << 20


@dataclass
class SourceStats:
    files_read: int = 0
    files_empty: int = 0
    files_skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    skipped_by_extension: collections.Counter = field(default_factory=collections.Counter)
    invalid_utf8: dict[str, int] = field(default_factory=dict)  # path -> invalid byte sequences
    bad_records: dict[str, int] = field(default_factory=dict)  # path -> skipped .jsonl/.parquet records
    too_long: dict[str, int] = field(default_factory=dict)  # path -> documents over max_doc_chars, skipped
    warnings: list[str] = field(default_factory=list)  # other things the user should know (odd names, links)
    documents: int = 0
    bytes: int = 0

    def add(self, other: "SourceStats") -> None:
        """Fold in the counts of files read elsewhere (the Ray engine reads files in Ray tasks).

        Added in file order, the dicts keep the insertion order of a local run, so warnings print alike.
        """
        for name, mine in vars(self).items():
            theirs = getattr(other, name)
            if isinstance(mine, int):
                setattr(self, name, mine + theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:  # per-file dicts: counts add up, reasons are kept
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value if isinstance(value, int) else value


class BadFile(Exception):
    """A file that cannot be read as documents; handled by the bad_files policy."""


def printable(text: str) -> str:
    """text with the bytes of a file name that is not UTF-8 as \\x escapes (caf\\xe9.txt).

    Python holds such bytes as surrogate escapes, which can be neither printed
    nor written to Parquet; UTF-8 text comes back unchanged.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def one_line(err: Exception) -> str:
    """An exception's text on one line (pyarrow's span several), printable."""
    return printable(" ".join(str(err).split()))


# --------------------------------------------------------------------------- discovery

def base_extension(path: Path) -> str:
    """'.txt' for 'a.txt' and 'a.txt.gz'; '' when there is none."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def relative_name(path: Path, input_dir: Path, stats: SourceStats) -> str:
    """The document id and source of a file: its path under input_dir, printable (warned when escaped)."""
    rel = path.relative_to(input_dir).as_posix()
    readable = printable(rel)
    if readable != rel:
        stats.warnings.append(f"{readable}: the file name is not valid UTF-8; its bytes are shown as \\x escapes")
    return readable


def _walk(input_dir: Path, stats: SourceStats, bad_files: str) -> Iterator[Path]:
    """Files under input_dir, through symlinked folders too, each folder once; hidden ones left out."""
    seen: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) -> name: a link back up would loop forever

    def unlistable(err: OSError) -> None:  # os.walk would skip such a folder without a word
        if bad_files == "error":
            raise UserError(f"{printable(str(err.filename))}: the folder cannot be listed ({err.strerror}): fix its "
                            f"permissions or set merge.bad_files=skip") from None
        stats.files_skipped[printable(str(err.filename))] = f"the folder cannot be listed ({err.strerror})"

    for folder, subfolders, names in os.walk(input_dir, followlinks=True, onerror=unlistable):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            subfolders.clear()
            stats.warnings.append(f"{printable(folder)}: not read, it is the same folder as "
                                  f"{seen[info.st_dev, info.st_ino]}")
            continue
        seen[info.st_dev, info.st_ino] = printable(folder)
        # Hidden folders (.git) are not entered; sorted, so a folder linked twice is read under the same name.
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in names:
            path = Path(folder, name)
            if name.startswith("."):
                continue  # hidden files (.gitkeep, .DS_Store)
            if not path.is_dir():  # a broken link, a pipe or a device is kept too: read_file counts or refuses it
                yield path


def find_input_files(input_dir: Path, extensions: list[str], stats: SourceStats,
                     bad_files: str = "error") -> list[Path]:
    """All files under input_dir with an accepted extension, in a stable (sorted path) order."""
    if not input_dir.is_dir():
        raise UserError(f"merge.input_dir={input_dir} is not a directory: create it and put your text files there")
    accepted = {e.lower() for e in extensions}
    files = []
    for path in sorted(_walk(input_dir, stats, bad_files)):
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


def _count_invalid(chunks: Iterable[bytes]) -> int:
    """Number of invalid UTF-8 sequences in a stream of byte chunks (a character may straddle two)."""
    invalid = 0

    def count(err: UnicodeDecodeError):
        nonlocal invalid
        invalid += 1
        return "\ufffd", err.end

    codecs.register_error("sources.count", count)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="sources.count")
    for chunk in chunks:
        decoder.decode(chunk)
    decoder.decode(b"", final=True)
    return invalid


def count_invalid_utf8(path: Path) -> int:
    """Number of invalid UTF-8 sequences in the (decompressed) file, streamed in chunks."""
    with _open_binary(path) as f:
        return _count_invalid(iter(lambda: f.read(CHUNK_BYTES), b""))


def _sniff_binary(path: Path) -> None:
    with _open_binary(path) as f:
        head = f.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise BadFile("looks binary (it has NUL bytes; if it is UTF-16 text, convert it to UTF-8)")


def _open_text(path: Path, errors: str) -> IO[str]:
    # utf-8-sig drops a leading byte-order mark; newline="" keeps CRLF for clean to tidy.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors=errors, newline="")


def _parquet_texts(path: Path, text_field: str) -> Iterator[pa.Array]:
    """The text column of a Parquet file as bytes (large_binary), a batch at a time.

    Bytes, because a binary column holds text too, and a string column may
    hold invalid UTF-8 that Arrow does not check until it makes Python strings.
    """
    with _open_binary(path) as raw:
        try:
            pf = pq.ParquetFile(raw)
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise BadFile(f"is not a readable Parquet file ({one_line(err)})") from None
        schema = pf.schema_arrow
        if text_field not in schema.names:
            raise BadFile(f"has no column {text_field!r} (columns: {', '.join(schema.names)}); set merge.text_field")
        if schema.field(text_field).type not in TEXT_TYPES:
            raise BadFile(f"has column {text_field!r} of type {schema.field(text_field).type}, not text; "
                          f"set merge.text_field")
        try:
            for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
                yield batch.column(0).cast(pa.large_binary())
        except (OSError, pa.ArrowException) as err:  # a corrupt page or row group
            raise BadFile(f"cannot be read ({one_line(err)})") from None


def _parquet_invalid_utf8(path: Path, text_field: str) -> int:
    """Number of invalid UTF-8 sequences in a Parquet file's text column; Arrow checks valid batches fast."""
    invalid = 0
    for texts in _parquet_texts(path, text_field):
        try:
            texts.cast(pa.large_string())
        except pa.ArrowInvalid:
            invalid += sum(_count_invalid([text]) for text in texts.to_pylist() if text is not None)
    return invalid


def _decode(texts: pa.Array) -> list[str | None]:
    """A batch of texts as str (None for null): invalid UTF-8 is replaced, as in a text file."""
    try:
        return texts.cast(pa.large_string()).to_pylist()
    except pa.ArrowInvalid:
        return [None if text is None else text.decode("utf-8", "replace") for text in texts.to_pylist()]


# --------------------------------------------------------------------------- per-format readers

# A document longer than max_doc_chars is read a piece at a time and dropped, never held whole: a 300 MB
# file that is one line would otherwise be copied several times over (str, UTF-8, Arrow, Parquet pages).
TOO_LONG = None  # what the bounded readers yield in place of such a document
CHUNK_CHARS = 1 << 20


def _whole(f: IO[str], max_chars: int) -> str | None:
    """The rest of f, or TOO_LONG once it passes max_chars (0: no limit; the remainder is read and dropped)."""
    if not max_chars:
        return f.read()
    parts, size = [], 0
    while chunk := f.read(CHUNK_CHARS):
        size += len(chunk)
        if size > max_chars:
            while f.read(CHUNK_CHARS):
                pass
            return TOO_LONG
        parts.append(chunk)
    return "".join(parts)


def _lines(f: IO[str], max_chars: int) -> Iterator[str | None]:
    """Each line of f with its line break, or TOO_LONG for one of more than max_chars characters (0: no limit)."""
    if not max_chars:
        yield from f
        return
    while line := f.readline(max_chars + 1):
        if len(line) <= max_chars or line[-1] in "\r\n":
            yield line
            continue
        while line and line[-1] not in "\r\n":  # skip the rest of the long line
            line = f.readline(CHUNK_CHARS)
        yield TOO_LONG


def _text_documents(path: Path, rel: str, mode: str, max_chars: int) -> Iterator[Document | None]:
    with _open_text(path, "replace") as f:
        if mode == "file":
            text = _whole(f, max_chars)
            yield TOO_LONG if text is TOO_LONG else Document(rel, rel, text)
        elif mode == "line":
            for lineno, line in enumerate(_lines(f, max_chars), 1):
                if line is TOO_LONG:
                    yield TOO_LONG
                elif line.strip():
                    yield Document(f"{rel}#{lineno}", rel, line.rstrip("\r\n"))
        else:
            yield from _paragraphs(_lines(f, max_chars), rel, max_chars)


def _paragraphs(lines: Iterator[str | None], rel: str, max_chars: int) -> Iterator[Document | None]:
    """Blank-line-separated blocks; a block longer than max_chars is dropped as its lines arrive."""
    block: list[str] = []
    size, index, too_long = 0, 0, False
    for line in itertools.chain(lines, [""]):  # a final blank line ends the last block
        if line is not TOO_LONG and not line.strip():
            if block or too_long:
                index += 1
                yield TOO_LONG if too_long else Document(f"{rel}#{index}", rel, "".join(block).rstrip("\r\n"))
            block, size, too_long = [], 0, False
        elif line is TOO_LONG or too_long or (max_chars and size + len(line) > max_chars):
            block, too_long = [], True
        else:
            block.append(line)
            size += len(line)


def _bad_record(where: str, problem: str, rel: str, params: MergeParams, stats: SourceStats) -> None:
    """A .jsonl or .parquet record without text: refused, or counted under merge.bad_files=skip."""
    if params.bad_files == "error":
        raise UserError(f"{where}: {problem}; fix the record, set merge.text_field, or set merge.bad_files=skip "
                        f"to skip such records")
    stats.bad_records[rel] = stats.bad_records.get(rel, 0) + 1


def _jsonl_documents(path: Path, rel: str, params: MergeParams, stats: SourceStats) -> Iterator[Document | None]:
    with _open_text(path, "replace") as f:
        for lineno, line in enumerate(_lines(f, params.max_doc_chars), 1):
            if line is TOO_LONG:  # its text is longer still than the record
                yield TOO_LONG
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record.get(params.text_field) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise ValueError(f"no string field {params.text_field!r}")
            except (ValueError, KeyError, RecursionError) as err:  # RecursionError: nested too deep
                _bad_record(f"{path}:{lineno}", f"bad JSON record ({err})", rel, params, stats)
                continue
            text, surrogates = LONE_SURROGATE.subn("\ufffd" if params.encoding_errors == "replace" else "", text)
            if surrogates:
                if params.encoding_errors == "error":
                    raise UserError(f"{path}:{lineno}: {surrogates} lone surrogate escape(s) (half of a \\uXXXX "
                                    f"pair), which are not valid UTF-8; fix the record or set merge.encoding_errors "
                                    f"to replace or skip")
                # Found while the file is parsed, after earlier records were written: so under "skip"
                # the characters are dropped, not the file. Counted either way.
                stats.invalid_utf8[rel] = stats.invalid_utf8.get(rel, 0) + surrogates
            yield Document(f"{rel}#{lineno}", rel, text)


def _parquet_documents(path: Path, rel: str, params: MergeParams, stats: SourceStats) -> Iterator[Document]:
    row = 0
    for texts in _parquet_texts(path, params.text_field):
        for text in _decode(texts):
            row += 1
            if text is None:
                _bad_record(f"{path}: row {row}", f"no text (null in column {params.text_field!r})", rel,
                            params, stats)
                continue
            too_long = params.max_doc_chars and len(text) > params.max_doc_chars
            yield TOO_LONG if too_long else Document(f"{rel}#{row}", rel, text)


# --------------------------------------------------------------------------- one file

def _stat_errno(path: Path) -> int | None:
    try:
        os.stat(path)
    except OSError as err:
        return err.errno
    return None


def read_file(path: Path, rel: str, params: MergeParams, stats: SourceStats) -> Iterator[Document]:
    """Documents of one input file, applying the encoding and bad-file policies.

    A first pass reads the whole file (to count invalid UTF-8) before the first
    document is yielded, so a gzip stream or Parquet row group that is corrupt
    part way fails the file while none of it is written: a skipped file leaves
    no documents behind, and memory stays one chunk or batch, not one file.
    """
    yielded = 0
    try:
        if path.is_symlink() and not path.exists():
            loop = _stat_errno(path) == errno.ELOOP
            raise BadFile(f"is a {'loop of symbolic links' if loop else 'broken symbolic link'} "
                          f"(to {printable(os.readlink(path))})")
        if not path.is_file():  # reading a named pipe would wait for a writer, a device may never end
            raise BadFile("is not a regular file (a named pipe, socket or device)")
        if path.stat().st_size == 0:
            stats.files_empty += 1
            return
        ext = base_extension(path)
        if ext == ".parquet":
            invalid = _parquet_invalid_utf8(path, params.text_field)
        else:
            _sniff_binary(path)
            invalid = count_invalid_utf8(path)
        if invalid:
            stats.invalid_utf8[rel] = invalid
            if params.encoding_errors == "error":
                raise UserError(f"{path}: {invalid} invalid UTF-8 byte sequence(s); convert the file to UTF-8 "
                                f"or set merge.encoding_errors to replace or skip")
            if params.encoding_errors == "skip":
                stats.files_skipped[rel] = f"{invalid} invalid UTF-8 sequences"
                return
        if ext == ".jsonl":
            docs = _jsonl_documents(path, rel, params, stats)
        elif ext == ".parquet":
            docs = _parquet_documents(path, rel, params, stats)
        else:
            docs = _text_documents(path, rel, params.doc_mode, params.max_doc_chars)
        for doc in docs:
            if doc is TOO_LONG:
                stats.too_long[rel] = stats.too_long.get(rel, 0) + 1
                continue
            stats.documents += 1
            stats.bytes += len(doc.text.encode("utf-8"))
            yielded += 1
            yield doc
        stats.files_read += 1
    except (BadFile, OSError, EOFError, gzip.BadGzipFile) as err:
        reason = str(err) if isinstance(err, BadFile) else f"cannot be read ({one_line(err)})"
        if params.bad_files == "error":
            raise UserError(f"{path} {reason}; remove it or set merge.bad_files=skip") from None
        if yielded:  # only a file changed or lost since the first pass gets here; never keep part of it
            raise UserError(f"{path} {reason} after {yielded} of its documents were written, so it cannot be "
                            f"skipped; fix or remove it") from None
        stats.files_skipped[rel] = reason


# --------------------------------------------------------------------------- blocks

@dataclass
class FileBlock:
    """Consecutive input files, read and written together: merge's unit of work."""
    index: int  # the block's number, in file order: its part files are part-{index:05d}*.parquet
    paths: list[str]  # absolute, so a Ray worker on another node (a shared filesystem) finds them
    rels: list[str]  # each file's name under input_dir: its documents' ids and source


def file_blocks(files: list[Path], input_dir: Path, stats: SourceStats) -> list[FileBlock]:
    """The files, in order, grouped into blocks of about BLOCK_BYTES on disk; names warned about in `stats`."""
    blocks: list[FileBlock] = []
    size = BLOCK_BYTES
    for path in files:
        if size >= BLOCK_BYTES:
            blocks.append(FileBlock(len(blocks), [], []))
            size = 0
        # absolute(), not resolve(): a broken symbolic link must stay one for read_file to count it.
        blocks[-1].paths.append(str(path.absolute()))
        blocks[-1].rels.append(relative_name(path, input_dir, stats))
        size += path.lstat().st_size
    return blocks


def write_block(block: FileBlock, params: MergeParams, out_dir: Path) -> SourceStats:
    """Read the block's files and write their documents as block `block.index` of out_dir; return its counts."""
    stats = SourceStats()
    with DocumentWriter(out_dir, block=block.index) as writer:
        for path, rel in zip(block.paths, block.rels):
            for doc in read_file(Path(path), rel, params, stats):
                writer.write(doc)
    return stats
