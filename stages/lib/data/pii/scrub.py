"""Find personal data and secrets in text and replace them with typed placeholders.

`PiiScrubber(["email", "phone"]).scrub(text)` returns the text with every hit
replaced by its kind's placeholder (`<EMAIL>`, `<PHONE>`, ...) and the number of
hits per kind. Kinds (kinds.py): email, phone, ipv4, ipv6, credit_card, iban, secret.
Each kind's detector is a module of this package (email.py, phone.py, ip.py,
payment.py, secrets.py with assigned.py); its docstring says what it catches and what
it leaves alone. This module runs the enabled ones and settles overlaps.

Why regexes, and one library: Presidio and scrubadub pull in spaCy models and are
far too slow for a corpus pass, and datatrove's PII formatter covers only e-mails
and IP addresses. Hand-written rules find the candidates at tens of MB/s; which digit
runs are phone numbers is left to phonenumbers (phone.py). The rules aim at precision
on literary text and code (years, verse references, times, page ranges, versions and
OIDs must survive) as much as at recall on real data, so every candidate is checked
after the regex. A hit is replaced whole. bench/pii.py measures recall and precision
on a labelled set (bench/pii/).

Speed: Python's regex engine tries a pattern that starts with a character class
at every position, but jumps between occurrences of a leading literal at C
speed. So each rule starts from a cheap trigger (`@`, `::`, `at`, a run of digits,
`://`, a literal like `_` or `eyJ`, a ':' or '=' found by str.find) and the full
regex only runs in a small window around it. One pass (digits.py) finds the digit runs
shared by phone, card, IPv4 and IBAN.
"""
from __future__ import annotations

import bisect

from stages.lib.data.pii.digits import digit_runs
from stages.lib.data.pii.email import find_emails
from stages.lib.data.pii.ip import find_ipv4, find_ipv6
from stages.lib.data.pii.kinds import PLACEHOLDERS
from stages.lib.data.pii.payment import find_cards, find_ibans
from stages.lib.data.pii.phone import find_phones
from stages.lib.data.pii.secrets import find_secrets

# When hits of two kinds overlap, the earlier kind here wins: a secret may contain
# an '@' or digit groups, an IBAN contains card-like digit groups, an IPv6 address
# can end in an IPv4 address.
PRIORITY = ("secret", "email", "iban", "credit_card", "phone", "ipv6", "ipv4")

# Every finder takes the text and its digit runs and yields (start, end) spans.
_FINDERS = {"email": find_emails, "phone": find_phones, "ipv4": find_ipv4, "ipv6": find_ipv6,
            "credit_card": find_cards, "iban": find_ibans, "secret": find_secrets}

_DIGIT_KINDS = ("phone", "credit_card", "ipv4", "iban")  # the kinds found inside digit runs
# Full-width forms (U+FF01-FF5E: "０９０－１２３４－５６７８") are folded to ASCII for the
# digit kinds, one character for one (NFKC's mapping of that block), so spans stay those of
# the text. Only texts that hold a full-width digit pay for it: `in` on a text without
# characters above U+00FF returns at once.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FULLWIDTH_DIGITS = "０１２３４５６７８９"


def _fold_fullwidth(text: str) -> str:
    if text.isascii() or not any(d in text for d in _FULLWIDTH_DIGITS):
        return text
    return text.translate(_FULLWIDTH)


class PiiScrubber:
    """Finds and replaces the enabled kinds; holds only the kind names, so it pickles."""

    def __init__(self, kinds: list[str]):
        unknown = [k for k in kinds if k not in PLACEHOLDERS]
        if unknown:
            raise ValueError(f"unknown PII kinds {unknown} (known: {', '.join(PLACEHOLDERS)})")
        self.kinds = tuple(k for k in PRIORITY if k in kinds)
        self._needs_runs = any(k in _DIGIT_KINDS for k in self.kinds)

    def __repr__(self) -> str:
        return f"PiiScrubber({list(self.kinds)})"

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every hit, sorted and non-overlapping."""
        digit_text = _fold_fullwidth(text) if self._needs_runs else text
        runs = digit_runs(digit_text) if self._needs_runs else []
        candidates = []
        for rank, kind in enumerate(self.kinds):
            if runs or kind not in _DIGIT_KINDS:  # digit kinds have nothing to look at without runs
                for start, end in _FINDERS[kind](digit_text if kind in _DIGIT_KINDS else text, runs):
                    candidates.append((rank, start, -end, kind))
        if not candidates:
            return []
        candidates.sort()  # by priority, then leftmost-longest
        return _first_come([(kind, start, -neg_end) for _, start, neg_end, kind in candidates])

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        """Return text with each found item replaced by its kind's placeholder, and counts per kind
        (only kinds with count>0)."""
        hits = self.find(text) if self.kinds else []
        if not hits:
            return text, {}
        parts, counts, pos = [], {}, 0
        for kind, start, end in hits:
            parts += [text[pos:start], PLACEHOLDERS[kind]]
            counts[kind] = counts.get(kind, 0) + 1
            pos = end
        parts.append(text[pos:])
        return "".join(parts), counts


def _first_come(candidates: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Keep each candidate that overlaps none kept before it; return them sorted by start."""
    starts: list[int] = []
    kept: list[tuple[str, int, int]] = []  # sorted by start, parallel to starts
    for kind, start, end in candidates:
        i = bisect.bisect_right(starts, start)
        if (i > 0 and kept[i - 1][2] > start) or (i < len(kept) and kept[i][1] < end):
            continue
        starts.insert(i, start)
        kept.insert(i, (kind, start, end))
    return kept
