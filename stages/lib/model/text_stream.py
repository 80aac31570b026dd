"""Writing generated text as its tokens arrive, without printing what a later token may change.

Each step decodes all the ids so far (a character's bytes may be split across tokens) and writes what
was not written yet, up to `printable_end`: a trailing U+FFFD may be the first bytes of a character still
to come, and a tail that begins a stop string may turn out to be that stop string, which is never shown.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from stages.lib.model.decoding import cut_at_stop

REPLACEMENT = "\ufffd"  # what decoding gives for the first bytes of a character whose last bytes are still to come


def printable_end(text: str, stop_strings: Sequence[str]) -> int:
    """How much of the text decoded so far can be printed for good: not a trailing U+FFFD (its character
    may be completed by the next token), and not a tail that a stop string may begin with."""
    end = len(text.rstrip(REPLACEMENT))
    for stop in stop_strings:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):  # the longest tail that begins the stop string
            if text.endswith(stop[:n]):
                end = min(end, len(text) - n)
                break
    return end


class TextStream:
    """Writes a sample's text as its tokens arrive, up to printable_end; `finish` writes the rest."""

    def __init__(self, decode: Callable[[list[int]], str], stop_strings: Sequence[str], out: TextIO,
                 stop_token: int | None):
        self.decode, self.stop_strings, self.out, self.stop_token = decode, stop_strings, out, stop_token
        self.ids: list[int] = []
        self.written = 0

    def add(self, token: int | None) -> None:
        if token is None or token == self.stop_token:
            return
        self.ids.append(token)
        text, _ = cut_at_stop(self.decode(self.ids), self.stop_strings)
        self.write(text[:printable_end(text, self.stop_strings)])

    def finish(self, text: str) -> None:
        """Write the rest of the final text (held-back characters included)."""
        self.write(text)

    def write(self, text: str) -> None:
        if len(text) > self.written:
            self.out.write(text[self.written:])
            self.out.flush()
            self.written = len(text)
