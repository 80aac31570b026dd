"""Drawing positions uniformly over a whole corpus in two passes, so memory stays bounded.

The first pass counts the usable positions of each document; draw_positions then picks global positions
with a seeded generator and says, per document, which of its positions to build on the second pass and in
what rank. The task and instruction builders both build their items this way.
"""
from __future__ import annotations

import bisect
import itertools
import random


def draw_positions(counts: list[int], k: int, rng: random.Random) -> dict[int, list[tuple[int, int]]]:
    """Document index -> [(rank, position index within the document)] for k positions drawn without
    replacement (all of them when there are fewer) out of sum(counts)."""
    offsets = [0, *itertools.accumulate(counts)]
    wanted: dict[int, list[tuple[int, int]]] = {}
    for rank, g in enumerate(rng.sample(range(offsets[-1]), min(offsets[-1], k))):
        d = bisect.bisect_right(offsets, g) - 1
        wanted.setdefault(d, []).append((rank, g - offsets[d]))
    return wanted
