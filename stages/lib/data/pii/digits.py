"""What the digit kinds (phone, card, IPv4, IBAN) share: the runs of digits, and the words before a number.

One scan finds the runs of digits and separators that could hold a phone number, a card
number or an IPv4 address (7+ characters, so years, "1-2" and "3:16" are skipped without
a second look), or the check digits of an IBAN ("GB82", "gb82"). Each digit detector runs
its regex only inside those runs, which keeps a pass over prose fast.

`number_context` reads the words before a number, or its CSV column's name: a phone word
makes a digit run a phone number, an order or ISBN label (NOT_PII_WORDS) makes it none.
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.kinds import Span

_DIGIT_RUN = re.compile(r"\d(?:[\d ()./+-]{6,}|(?<=[A-Za-z]{2}\d)\d)", re.A)
_MIN_RUN = 7


def digit_runs(text: str) -> list[Span]:
    return [m.span() for m in _DIGIT_RUN.finditer(text)]


def in_runs(pattern: re.Pattern, text: str, runs: list[Span]) -> Iterator[re.Match]:
    """Matches of `pattern` inside each long digit run, with a little context each side.

    The two characters before take a leading '+', '(' or "(+"; the two after are a non-run
    character and the one after it, so look-aheads at the window's end ("14:12",
    "x12") decide as they would on the whole text.
    """
    for start, end in runs:
        if end - start >= _MIN_RUN:
            yield from pattern.finditer(text, max(0, start - 2), end + 2)


# Words that say a number is not a phone or card number: an order, an ISBN, an EAN, an
# amount, a count. Searched, like every word list here, in lower-cased text (a case-sensitive
# regex on lower-case text is several times faster than a case-insensitive one).
NOT_PII_WORDS = re.compile(r"""(?<![^\W\d_])(?:isbn|issn|order|invoice|rechnung|facture|factuur|ref|serial|id
    |tracking|ticket|case|sku|ean|gtin|upc|page|pp|vol|version|build|account|acct|iban|bic|zip|postcode|plz|cep
    |part|cat|catalog|model|item|art|lot|batch|txn|transaction|amount|total|montant|betrag|importe|valor
    |population|einwohner|habitantes|abitanti|inwoners)
    (?:\W{1,3}(?:(?:no|nr|number|num)\b|n°))?\W{0,4}\Z""", re.X)


def number_context(text: str, start: int, words: re.Pattern, label: re.Pattern | None = None) -> bool:
    """words occur in the 40 characters before start on the same line (or label, case kept,
    in the last 4 of them), or, for a delimited field, in its column's name on the
    document's first line (a CSV header)."""
    window_start = max(0, start - 40)
    window_start = max(window_start, text.rfind("\n", window_start, start) + 1)
    window = text[window_start:start]
    if words.search(window.lower()):
        return True
    if label and label.search(window, max(0, len(window) - 4)):
        return True
    field_start = start - (text[start - 1:start] in ('"', "'"))  # a quoted field: "...,\"0612345678\","
    delimiter = text[field_start - 1] if field_start else ""
    if delimiter not in (",", ";", "\t", "|", "\n"):
        return False
    line_start = text.rfind("\n", max(0, field_start - 4096), field_start) + 1
    header_end = text.find("\n", 0, 4096)
    if not 0 < line_start or header_end == -1:
        return False  # the first line itself, or no short first line to be a header
    if delimiter == "\n":  # the first field of its row: the header's delimiter, if this row has it
        delimiter = next((d for d in (",", ";", "\t", "|") if d in text[:header_end]), "")
        line_end = text.find("\n", field_start)
        if not delimiter or delimiter not in text[field_start:line_end if line_end != -1 else len(text)]:
            return False
    column = text.count(delimiter, line_start, field_start)
    header = text[:header_end].split(delimiter)
    return column < len(header) and bool(words.search(header[column].strip("\"' ").lower()))
