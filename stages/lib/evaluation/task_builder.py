"""Two benchmark tasks built from held-out documents, deterministically from a seed.

- next_passage (multiple choice): a few lines of a document as context; the
  choices are the true next passage and passages drawn from elsewhere in the
  same document (the same work), all joined to the context by the true separator.
- last_word (cloze): a few lines and the start of the next line; the target is
  the line's last word, a word of letters only (punctuation after it is not part of it).

Texts are cut at non-blank lines and keep their original whitespace, so a
context followed by its true continuation is a verbatim piece of the document.
The positions are drawn over all documents by stages/lib/data/heldout.py.
"""
from __future__ import annotations

import random
import re
from typing import Callable

from stages.lib.data.documents import Document
from stages.lib.data.heldout import DISTRACTOR_TRIES, Lines, Source, draw_items, lines_of
from stages.lib.evaluation.task_format import Cloze, MultipleChoice
from stages.lib.params import TasksParams

_LAST_WORD = re.compile(r"^(.*\S)(\s+)([^\W\d_]+)([^\w\s]*)$")  # prefix, space, word (letters), punctuation


def span(units: Lines, start: int, count: int) -> str:
    """`count` lines from `start`, joined by their original separators (no leading separator)."""
    return units[start][1] + "".join(sep + line for sep, line in units[start + 1:start + count])


# --------------------------------------------------------------------------- next_passage

def passage_positions(units: Lines, s: TasksParams) -> list[int]:
    """Starts of contexts whose context and true next passage fit in max_chars."""
    c, k = s.context_lines, s.choice_lines
    if len(units) < c + k * s.n_choices:  # too short to hold the distractors too
        return []
    return [p for p in range(len(units) - c - k + 1)
            if len(span(units, p, c)) + len(units[p + c][0]) + len(span(units, p + c, k)) <= s.max_chars]


def passage_item(units: Lines, p: int, s: TasksParams, rng: random.Random) -> MultipleChoice | None:
    """The item at position p, or None when the document has too few distinct passages that fit."""
    c, k = s.context_lines, s.choice_lines
    context, sep = span(units, p, c), units[p + c][0]
    true = sep + span(units, p + c, k)
    budget = s.max_chars - len(context)
    choices = [true]
    for _ in range(DISTRACTOR_TRIES):
        q = rng.randrange(len(units) - k + 1)
        if p - k < q < p + c + k:  # overlaps the context or the true passage
            continue
        candidate = sep + span(units, q, k)  # the true separator: only the text differs between choices
        if len(candidate) <= budget and candidate not in choices:
            choices.append(candidate)
            if len(choices) == s.n_choices:
                break
    else:
        return None
    answer = rng.randrange(s.n_choices)
    choices[0], choices[answer] = choices[answer], choices[0]
    return MultipleChoice(context, choices, answer)


# --------------------------------------------------------------------------- last_word

def word_positions(units: Lines, s: TasksParams) -> list[int]:
    """Lines (after context_lines others) ending in a word of min_word_chars letters that fit in max_chars
    and that the context already holds.

    As in LAMBADA, the word must be predictable from the passage, not only from the line: here it occurs
    (same spelling, as a whole word) earlier in the context. Without that, exact match on a small model
    stayed near the always-the-commonest-word baseline (3.7% against 1.7% on the default run).
    """
    c = s.context_lines
    positions = []
    for p in range(c, len(units)):
        match = _LAST_WORD.match(units[p][1])
        if match and len(match[3]) >= s.min_word_chars and \
                len(span(units, p - c, c + 1)) - len(match[4]) <= s.max_chars and \
                re.search(rf"(?<!\w){re.escape(match[3])}(?!\w)", span(units, p - c, c) + units[p][0] + match[1]):
            positions.append(p)
    return positions


def word_item(units: Lines, p: int, s: TasksParams, rng: random.Random) -> Cloze:
    """The item at line p (rng unused: both tasks' builders take the same arguments)."""
    c = s.context_lines
    prefix, space, word, _ = _LAST_WORD.match(units[p][1]).groups()
    return Cloze(span(units, p - c, c) + units[p][0] + prefix, space + word)


# --------------------------------------------------------------------------- both tasks

Positions = Callable[[Lines, TasksParams], list[int]]
Builder = Callable[[Lines, int, TasksParams, random.Random], MultipleChoice | Cloze | None]
TASKS: dict[str, tuple[Positions, Builder]] = {
    "next_passage": (passage_positions, passage_item),
    "last_word": (word_positions, word_item),
}


class TaskDocument:
    """A document's lines, parsed once for both tasks."""

    def __init__(self, doc: Document, s: TasksParams):
        self.units, self.s = lines_of(doc.text), s

    def positions(self, name: str) -> list[int]:
        return TASKS[name][0](self.units, self.s)

    def item(self, name: str, p: int, rng: random.Random) -> MultipleChoice | Cloze | None:
        return TASKS[name][1](self.units, p, self.s, rng)


def build_tasks(documents: Source, s: TasksParams) -> dict[str, list]:
    """tasks.n_items items of each task in TASKS (fewer when the documents hold fewer), drawn uniformly over
    the documents `documents()` yields (called twice: two passes)."""
    return draw_items(documents, lambda doc: TaskDocument(doc, s), dict.fromkeys(TASKS, s.n_items), str(s.seed))
