"""An instruction set built from documents, deterministically from a seed: short questions about a passage.

Every kind asks about text shown in the prompt, so a small model can answer by reading it, and every answer
but `continue`'s is short, so exact match measures it:

- next_line: two lines, then four lettered candidates for the next one (the true line and three from
  elsewhere in the same document); the answer is the letter.
- missing_word: a line (after the one before it) with a word replaced by ___; the answer is the word.
- first_word / last_word: a line; the answer is its first / last word.
- followup: first_word, then a second user turn "And the last word?": the answer needs the history.
- speaker: a few speeches of a play with their speakers' names, and a quoted line; the answer is the name
  of who says it (documents without recurring speaker labels give none).
- continue: three lines; the answer is the next line (for the loss: too open for exact match).

Some records open with a system prompt (system_fraction). Each record is
{"messages": [...], "kind": ..., "doc": the document id}, chat JSONL (stages/lib/data/instructions.py).
The positions are drawn over all documents by stages/lib/data/heldout.py.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from typing import Callable, Optional

from stages.lib.data.documents import Document
from stages.lib.data.heldout import DISTRACTOR_TRIES, Source, draw_items, lines_of
from stages.lib.params import INSTRUCTION_KINDS, InstructionsParams

KINDS = INSTRUCTION_KINDS  # (the params validate instructions.kinds against them)
EXACT_MATCH_KINDS = ("next_line", "missing_word", "first_word", "last_word", "followup", "speaker")
SYSTEM_PROMPTS = (
    "You are a careful reader. Answer briefly.",
    "Answer with as few words as you can.",
    "You help people study texts. Give only the answer.",
)
LETTERS = "ABCD"
MIN_SPEAKER_LABELS = 3  # a name must head this many speeches in the document to count as a speaker
SPEECH_LINES = 3  # lines shown of each speech
SPEECHES = 3  # speeches in a speaker passage

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_LABEL = re.compile(r"^([A-Z][A-Za-z'’]*(?: [A-Z][A-Za-z'’]*){0,2})\.$")  # "HAMLET.", "Ham.", "First Lord."
_INLINE = re.compile(r"^\s+([A-Z][a-z]+)\. (\S.*)$")  # Folio style: "   Ham. To be, or not to be"

Turns = list[tuple[str, str]]  # (user, assistant) pairs
Positions = Callable[[list[str]], list[int]]
Builder = Callable[[list[str], int, random.Random], Optional[Turns]]


def words(line: str) -> list[re.Match]:
    return list(_WORD.finditer(line))


# --------------------------------------------------------------------------- kinds on lines

def next_line_positions(lines: list[str]) -> list[int]:
    return list(range(2, len(lines))) if len(lines) >= 2 + 2 * len(LETTERS) else []


def next_line_item(lines: list[str], p: int, rng: random.Random) -> Turns | None:
    choices = [lines[p]]
    for _ in range(DISTRACTOR_TRIES):
        q = rng.randrange(len(lines))
        if not p - 2 <= q <= p + 1 and lines[q] not in choices:  # not the context, the line, or the one after
            choices.append(lines[q])
            if len(choices) == len(LETTERS):
                break
    else:
        return None
    answer = rng.randrange(len(LETTERS))
    choices[0], choices[answer] = choices[answer], choices[0]
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, choices))
    question = (f"Which line comes next?\n\n{lines[p - 2]}\n{lines[p - 1]}\n\n{options}\n\n"
                f"Answer with {', '.join(LETTERS[:-1])} or {LETTERS[-1]}.")
    return [(question, LETTERS[answer])]


def missing_word_positions(lines: list[str]) -> list[int]:
    return [p for p in range(1, len(lines)) if len(words(lines[p])) >= 4]


def missing_word_item(lines: list[str], p: int, rng: random.Random) -> Turns | None:
    candidates = [m for m in words(lines[p]) if len(m.group()) >= 3]
    if not candidates:
        return None
    word = rng.choice(candidates)
    masked = lines[p][:word.start()] + "___" + lines[p][word.end():]
    return [(f"Fill in the missing word (___):\n\n{lines[p - 1]}\n{masked}", word.group())]


def line_word_positions(lines: list[str]) -> list[int]:
    return [p for p in range(len(lines)) if len(words(lines[p])) >= 3]


def first_word_item(lines: list[str], p: int, rng: random.Random) -> Turns:
    return [(f"What is the first word of this line?\n\n{lines[p]}", words(lines[p])[0].group())]


def last_word_item(lines: list[str], p: int, rng: random.Random) -> Turns:
    return [(f"What is the last word of this line?\n\n{lines[p]}", words(lines[p])[-1].group())]


def followup_item(lines: list[str], p: int, rng: random.Random) -> Turns:
    return first_word_item(lines, p, rng) + [("And the last word?", words(lines[p])[-1].group())]


def continue_positions(lines: list[str]) -> list[int]:
    return list(range(3, len(lines)))


def continue_item(lines: list[str], p: int, rng: random.Random) -> Turns:
    context = "\n".join(lines[p - 3:p])
    return [(f"Continue the passage with its next line:\n\n{context}", lines[p])]


# --------------------------------------------------------------------------- speaker

def speeches(text: str) -> list[tuple[str, list[str]]]:
    """(speaker, lines) of each speech headed by a label that recurs in the document (a real speaker).

    A label is a name alone on a line after a blank line ("HAMLET."), or, Folio style, an indented name
    starting the speech's first line ("   Ham. To be"). A speech runs to the next label or blank line."""
    found: list[tuple[str, list[str]]] = []
    previous, open_speech = "", False
    for raw in text.split("\n"):
        label = _LABEL.match(raw.strip()) if not previous.strip() else None
        inline = _INLINE.match(raw)
        if label or inline:
            found.append((label[1] if label else inline[1], [] if label else [inline[2].strip()]))
            open_speech = True
        elif raw.strip() and open_speech:
            found[-1][1].append(raw.strip())
        else:
            open_speech = bool(raw.strip()) and open_speech
        previous = raw
    counts = Counter(name for name, _ in found)
    return [(name, said) for name, said in found if counts[name] >= MIN_SPEAKER_LABELS and said]


def speaker_positions_of(parsed: list[tuple[str, list[str]]]) -> list[int]:
    return [i for i in range(len(parsed) - SPEECHES + 1)
            if len({name for name, _ in parsed[i:i + SPEECHES]}) >= 2]


def speaker_item_of(parsed: list[tuple[str, list[str]]], i: int, rng: random.Random) -> Turns | None:
    passage = [(name, said[:SPEECH_LINES]) for name, said in parsed[i:i + SPEECHES]]
    spoken = [line for _, said in passage for line in said]
    quotable = [(name, line) for name, said in passage for line in said
                if spoken.count(line) == 1 and len(words(line)) >= 3]
    if not quotable:
        return None
    name, line = rng.choice(quotable)
    shown = "\n\n".join(f"{who}.\n" + "\n".join(said) for who, said in passage)
    return [(f"{shown}\n\nIn this passage, who says \"{line}\"?", name)]


# Kinds whose positions are counted on lines_of(text); speaker works on speeches(text) instead.
LINE_KINDS: dict[str, tuple[Positions, Builder]] = {
    "next_line": (next_line_positions, next_line_item),
    "missing_word": (missing_word_positions, missing_word_item),
    "first_word": (line_word_positions, first_word_item),
    "last_word": (line_word_positions, last_word_item),
    "followup": (line_word_positions, followup_item),
    "continue": (continue_positions, continue_item),
}


# --------------------------------------------------------------------------- the set

def conversation(turns: Turns, rng: random.Random, s: InstructionsParams) -> list[dict] | None:
    """The messages, with a system prompt on a system_fraction of records; None when over max_chars."""
    messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < s.system_fraction \
        else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages if sum(len(m["content"]) for m in messages) <= s.max_chars else None


class InstructionDocument:
    """A document's lines and speeches, parsed once for every kind; its items are records of the set."""

    def __init__(self, doc: Document, s: InstructionsParams):
        self.id, self.s = doc.id, s
        self.lines = [line.strip() for _, line in lines_of(doc.text)]  # instructions show lines unindented
        self.speeches = speeches(doc.text)

    def positions(self, kind: str) -> list[int]:
        if kind == "speaker":
            return speaker_positions_of(self.speeches)
        return LINE_KINDS[kind][0](self.lines)

    def item(self, kind: str, p: int, rng: random.Random) -> dict | None:
        """The record at position p, or None when the kind cannot be asked there or it is over max_chars."""
        if kind == "speaker":
            turns = speaker_item_of(self.speeches, p, rng)
        else:
            turns = LINE_KINDS[kind][1](self.lines, p, rng)
        messages = conversation(turns, rng, self.s) if turns else None
        return {"messages": messages, "kind": kind, "doc": self.id} if messages else None


def shares(n: int, kinds: list[str]) -> dict[str, int]:
    """n items split evenly over the kinds, the first kinds taking the remainder."""
    return {kind: n // len(kinds) + (i < n % len(kinds)) for i, kind in enumerate(kinds)}


def build_split(documents: Source, n: int, split: str, s: InstructionsParams) -> list[dict]:
    """n records (fewer when the documents hold fewer) from the documents `documents()` yields (called twice),
    instructions.kinds in equal shares, shuffled."""
    built = draw_items(documents, lambda doc: InstructionDocument(doc, s), shares(n, s.kinds), f"{s.seed}:{split}")
    records = [record for kind in s.kinds for record in built[kind]]
    random.Random(f"{s.seed}:{split}:order").shuffle(records)  # kinds mixed, not in blocks
    return records
