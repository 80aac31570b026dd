"""Items drawn from documents deterministically from a seed: the loop the task and instruction builders share.

A builder names kinds of item and how many of each it wants; a document, parsed once, says where each
kind can stand in it (positions) and makes the item at one of them. Two passes over the documents keep
memory bounded on a big corpus: the first counts each kind's usable positions per document, the second
builds items at positions drawn uniformly over the whole corpus with a seeded generator.
"""
from __future__ import annotations

import bisect
import itertools
import random
import re
from pathlib import Path
from typing import Callable, Iterable, Protocol, TypeVar

from stages.lib.data.documents import Document, iter_documents
from stages.lib.data.split import train_documents, val_documents
from stages.lib.errors import UserError

CANDIDATES_PER_ITEM = 2  # positions drawn per wanted item: a few fail (too long, no distractors), the rest spare
DISTRACTOR_TRIES = 50  # draws of a wrong choice from elsewhere in the document before an item gives up

_LINE = re.compile(r"[^\n]*\S[^\n]*")  # a non-blank line, with its indentation
Lines = list[tuple[str, str]]  # (separator, line) for each non-blank line of a document
Source = Callable[[], Iterable[Document]]  # called once a pass: the same documents each time


def split_sources(folder: Path, seed: int, val_fraction: float) -> dict[str, Source]:
    """The documents in folder on each side of pack's split (pack.seed, pack.val_fraction): "train" and "val"."""
    return {"train": lambda: train_documents(iter_documents(folder), seed, val_fraction),
            "val": lambda: val_documents(iter_documents(folder), seed, val_fraction)}


def lines_of(text: str) -> Lines:
    """(separator, line) for each non-blank line; the separator is the text since the previous line."""
    units, end = [], 0
    for match in _LINE.finditer(text):
        units.append((text[end:match.start()], match.group()))
        end = match.end()
    return units


Item = TypeVar("Item", covariant=True)


class Parsed(Protocol[Item]):
    """A document parsed once for every kind of item."""

    def positions(self, kind: str) -> list[int]:
        """Where an item of this kind can stand in the document."""

    def item(self, kind: str, position: int, rng: random.Random) -> Item | None:
        """The item at one of those positions, or None when it cannot be made there."""


def draw_positions(counts: list[int], k: int, rng: random.Random) -> dict[int, list[tuple[int, int]]]:
    """Document index -> [(rank, position index within the document)] for k positions drawn without
    replacement (all of them when there are fewer) out of sum(counts)."""
    offsets = [0, *itertools.accumulate(counts)]
    wanted: dict[int, list[tuple[int, int]]] = {}
    for rank, g in enumerate(rng.sample(range(offsets[-1]), min(offsets[-1], k))):
        d = bisect.bisect_right(offsets, g) - 1
        wanted.setdefault(d, []).append((rank, g - offsets[d]))
    return wanted


def draw_items(documents: Source, parse: Callable[[Document], Parsed[Item]], wanted: dict[str, int],
               seed: str) -> dict[str, list[Item]]:
    """Up to wanted[kind] items of each kind from the documents `documents()` yields (called twice: two passes).

    Positions are drawn in a seeded random order (generators seeded "{seed}:{kind}", then
    "{seed}:{kind}:{rank}" for the item at rank); an item that fails to build gives way to the next one.
    """
    counts: dict[str, list[int]] = {kind: [] for kind in wanted}  # usable positions per document, in order
    for doc in documents():
        parsed = parse(doc)
        for kind in wanted:
            counts[kind].append(len(parsed.positions(kind)))

    draws = {kind: draw_positions(counts[kind], n * CANDIDATES_PER_ITEM, random.Random(f"{seed}:{kind}"))
             for kind, n in wanted.items()}  # kind -> document index -> [(rank, position index)]

    built: dict[str, list[tuple[int, Item]]] = {kind: [] for kind in wanted}
    for d, doc in enumerate(documents()):
        if not any(d in draws[kind] for kind in wanted):
            continue
        parsed = parse(doc)
        for kind in wanted:
            usable = parsed.positions(kind)
            for rank, i in draws[kind].get(d, []):
                item = parsed.item(kind, usable[i], random.Random(f"{seed}:{kind}:{rank}"))
                if item is not None:
                    built[kind].append((rank, item))
    return {kind: [item for _, item in sorted(built[kind], key=lambda b: b[0])[:n]] for kind, n in wanted.items()}


def require_items(built: dict[str, list], noun: str, documents: str, advice: str) -> None:
    """Refuse (UserError) when a kind came out empty: `documents` names where they were drawn from, `advice` what
    to change. Fewer items than wanted is no error: a small corpus holds fewer."""
    for kind, items in built.items():
        if not items:
            raise UserError(f"no {kind} {noun} could be built from {documents}: {advice}")
