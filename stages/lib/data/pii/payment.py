"""Payment card numbers and IBANs: numbers with a check digit, so a regex match must also add up.

Catches card numbers of 12-19 digits, unbroken or grouped 4-4-4-4 or 4-6-5 with one kind
of separator ("4111 1111 1111 1111", "3782-822463-10005"), whose issuer prefix fits their
length and whose Luhn sum holds; and IBANs ("GB82 WEST 1234 5698 7654 32",
"nl91abna0417164300") of a country that issues them, cut at that country's length, whose
mod-97 check gives 1.

Leaves alone: a long number whose prefix or checksum fails (an arbitrary number passes
only by chance, 1 in 10 times the prefix), a number after an order, ISBN or account label,
an AWS account id in an ARN, and a country code and digits that fail mod-97.
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.digits import NOT_PII_WORDS, in_runs, number_context
from stages.lib.data.pii.kinds import Span

# 12-19 digits unbroken, or in groups of 4 (Visa, Mastercard, ...) or 4-6-5 / 4-6-4
# (Amex, Diners) with one kind of separator; then the issuer prefix and Luhn sum must
# hold, so an arbitrary long number passes only by chance (1 in 10, times the prefix).
# A comma may stand either side: a card is a field of a CSV row as often as of a form.
_CARD = re.compile(r"""
    (?<![\w.+-])
    (?: \d{12,19}
      | \d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?
      | \d{4}([ -])\d{6}\2\d{4,5} )
    (?!\w|[.-]\d|[ ]\d{4}\b)
""", re.X | re.A)
# Issuer prefixes by length (IIN ranges): Visa 4 (13, 16, 19 digits), Diners 30/36/38 (14),
# Amex 34/37 and JCB 1800/2131 (15), Mastercard 51-55/22-27, JCB 35, Discover and
# UnionPay 6 (16), Maestro 50/56-58/6 (12 to 19).
_MAESTRO = r"50|5[6-8]|6"
_CARD_PREFIX = {length: re.compile(prefix) for length, prefix in (
    (12, _MAESTRO), (13, r"4"), (14, r"3[068]"), (15, r"3[47]|1800|2131"),
    (16, rf"4|5[1-5]|2[2-7]|35|{_MAESTRO}"), (17, _MAESTRO), (18, _MAESTRO), (19, rf"4|{_MAESTRO}"))}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def find_cards(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in in_runs(_CARD, text, runs):
        digits = re.sub(r"\D", "", m.group())
        prefix_ok = _CARD_PREFIX[len(digits)].match(digits)
        if len(digits) == 12 and text[m.start() - 1:m.start()] == ":":
            continue  # an AWS account id in an ARN ("...:eu-west-1:682685515392:")
        if prefix_ok and luhn_ok(digits) and not number_context(text, m.start(), NOT_PII_WORDS):
            yield m.span()


# ISO 13616: country, 2 check digits, then the account number, unbroken or in
# groups of 4 after single spaces ("GB82 WEST 1234 5698 7654 32"), in either case
# ("gb82 west ..."; one case throughout). The country must be one that issues IBANs,
# with its fixed length; then mod-97 must give 1.
_IBAN = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{2}\d\d(?: ?[A-Z0-9]{4}){2,8}(?: ?[A-Z0-9]{1,3})?"
                   r"|[a-z]{2}\d\d(?: ?[a-z0-9]{4}){2,8}(?: ?[a-z0-9]{1,3})?)", re.A)
IBAN_LENGTHS = {  # SWIFT IBAN registry (RU is not yet in it but issues IBANs)
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_checksum_ok(iban: str) -> bool:
    rearranged = (iban[4:] + iban[:4]).upper()
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1  # A=10 ... Z=35


def find_ibans(text: str, runs: list[Span]) -> Iterator[Span]:
    for start, _ in runs:
        m = _IBAN.match(text, start - 2) if start >= 2 else None
        if not m or (length := IBAN_LENGTHS.get(m.group()[:2].upper())) is None:
            continue
        # The regex may have run on into a following word: cut at the country's length,
        # which must fall at the end of a group.
        end, chars = m.start(), 0
        while chars < length and end < m.end():
            chars += text[end] != " "
            end += 1
        if chars == length and not text[end:end + 1].isalnum() and \
                iban_checksum_ok(text[m.start():end].replace(" ", "")):
            yield m.start(), end
        elif chars < length and not text[m.end():m.end() + 1].isalnum() and \
                iban_checksum_ok(m.group().replace(" ", "")):
            # Too short for its country, yet the check digits hold: a typo, or a test
            # generator's number (Faker's en_IN IBANs are one short); account data all the same.
            yield m.span()

