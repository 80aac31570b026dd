"""Reading instruction data: chat JSONL and Alpaca-style JSON/JSONL, as lists of messages.

- Chat JSONL, one conversation per line (the Hugging Face / OpenAI messages format):
  {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}
- Alpaca, a .json file holding a list of records or a .jsonl file of records:
  {"instruction": "...", "input": "...", "output": "..."}: the user says the instruction, followed by
  a blank line and the input when the input is not empty; the assistant says the output.

The format is decided per record (a record with "messages" is a chat), the container per file (.json: one
JSON list; .jsonl: a record per line, blank lines ignored). Other keys of a record are ignored.

A bad record (malformed JSON, not an object, neither format, no messages, an unknown role, a content that is
missing or not a string, no assistant turn) stops with one line naming the file, the record (its line in a
.jsonl, its position in a .json list) and what is wrong; or, with bad_records="skip", it is skipped and
counted by reason. `reject` applies the same policy to checks made later (the sft stage's conversations
longer than the context), so every bad record is reported alike.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from stages.lib.errors import UserError
from stages.lib.tokens.chat import ROLES

POLICY_KEY = "sft.bad_records"  # the params key named in error messages
Messages = list[dict]


@dataclass
class Record:
    """A conversation and where it came from: its line in a .jsonl file, its position (from 1) in a .json list."""
    number: int
    messages: Messages
    kind: str | None = None  # the record's optional "kind" field (the shipped set names each instruction's kind)


class BadRecord(ValueError):
    """Why a record is unusable: `reason` is the counter name, the message says what to fix."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def reject(path: Path, number: int, err: BadRecord, bad_records: str, skipped: Counter) -> None:
    """Raise a UserError naming the file and record, or (bad_records="skip") count the record as skipped."""
    if bad_records == "error":
        raise UserError(f"{path}: record {number}: {err} (fix it, or set {POLICY_KEY}: skip to skip such records)")
    skipped[err.reason] += 1


def load_records(path: Path, bad_records: str) -> tuple[list[Record], dict]:
    """The conversations in `path` with their record numbers, and counts: read, kept, skipped by reason."""
    if bad_records not in ("error", "skip"):
        raise ValueError(f"bad_records must be 'error' or 'skip', got {bad_records!r}")
    records, skipped, read = [], Counter(), 0
    for number, raw in _raw_records(path):
        read += 1
        try:
            kind = raw.get("kind") if isinstance(raw, dict) else None
            records.append(Record(number, to_messages(raw), kind if isinstance(kind, str) else None))
        except BadRecord as err:
            reject(path, number, err, bad_records, skipped)
    counts = {"read": read, "kept": len(records), "skipped": dict(sorted(skipped.items()))}
    return records, counts


def load_conversations(path: Path, bad_records: str) -> tuple[list[Messages], dict]:
    """The conversations in `path` as message lists, and counts: read, kept, skipped by reason."""
    records, counts = load_records(path, bad_records)
    return [r.messages for r in records], counts


def _raw_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(record number, parsed JSON or a BadRecord) for each record of the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: instruction file not found") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not an instruction file: name the .jsonl files") from None
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({err.strerror})") from None
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield number, _parse(line)
    elif path.suffix == ".json":
        data = _parse(text)
        if not isinstance(data, list):
            raise UserError(f"{path}: a .json instruction file must hold a list of records "
                            f"(for one record per line, name the file .jsonl)")
        yield from enumerate(data, start=1)
    else:
        raise UserError(f"{path}: instruction files must be .jsonl (a record per line) or .json (a list of records)")


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        return BadRecord("malformed_json", f"malformed JSON ({getattr(err, 'msg', 'too deeply nested')})")


def to_messages(raw: Any) -> Messages:
    """A record in either format as chat messages; BadRecord when it is not usable."""
    if isinstance(raw, BadRecord):
        raise raw
    if not isinstance(raw, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(raw).__name__}")
    if "messages" in raw:
        messages = raw["messages"]
    elif "instruction" in raw or "output" in raw:
        messages = _alpaca(raw)
    else:
        raise BadRecord("unknown_format", 'neither a chat ("messages") nor an Alpaca record ("instruction", '
                                          '"output")')
    _check_messages(messages)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _alpaca(raw: dict) -> Messages:
    for key in ("instruction", "output"):
        if not isinstance(raw.get(key), str):
            raise BadRecord("bad_content", f'"{key}" must be a string, got {raw.get(key)!r}')
    extra = raw.get("input", "")
    if not isinstance(extra, str):
        raise BadRecord("bad_content", f'"input" must be a string, got {extra!r}')
    user = raw["instruction"] + ("\n\n" + extra if extra else "")
    return [{"role": "user", "content": user}, {"role": "assistant", "content": raw["output"]}]


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRecord("empty_messages", f'"messages" must be a non-empty list, got {messages!r}'[:200])
    for i, m in enumerate(messages, start=1):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else m
            raise BadRecord("unknown_role", f"message {i} has role {role!r}; roles are {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise BadRecord("bad_content", f"message {i} ({m['role']}) has no string content, got "
                                           f"{m.get('content')!r}"[:200])
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRecord("no_assistant_turn", "no assistant message: nothing to learn")
