"""Phone numbers, in international and national formats of ten countries.

Catches "+44 (0)20 7946 0958", "(0161) 4960066", "080-9141-7776", "(555) 123-4567",
"612 345 678" (Spain), "06.12.34.56.78" (France), "(21) 9 8123-4567" (Brazil), and an
unbroken "2125550187" after a phone word ("Tel:", "llámenos al") or in a CSV column named
like one; an extension ("x12", "ext. 42") goes with its number.

Leaves alone: dates, versions, dotted addresses, thousands ("7 900 000") and amounts
("612 345 678,50 €"), year ranges, ZIP+4 codes and CEPs, the digit groups of cards and
IBANs, arithmetic ("635 * 4790 - 82093"), fields of ARNs, numbers after an order, ISBN or
part label, an unbroken number that no word calls a phone number (an id, a count) or that is
passed to a function ("range(1, 947948399)"), and rows of two-digit groups ("44 33 22 11").

Which digit runs are numbers, and in which country, is phonenumbers' call (Google's
libphonenumber metadata, what presidio uses): each candidate is parsed for the regions in
PHONE_REGIONS, and the library says whether the number is possible, valid, and how its
country groups the digits. No numbering plan is written here. The library is called only
for runs shaped like a phone number, and its verdicts are cached.
"""
from __future__ import annotations

import functools
import re
from typing import Iterator

import phonenumbers
import phonenumbers.data

from stages.lib.data.pii.digits import NOT_PII_WORDS, in_runs, number_context
from stages.lib.data.pii.kinds import Span
from stages.lib.errors import UserError

# A candidate is a run of digit groups with single separators, maybe a leading
# '+' or '00', an area code in parentheses, a "(0)" and an extension: "+44 (0)20
# 7946 0958", "(0161) 4960066", "080-9141-7776", "202.555.0143 x12".
_PHONE_CANDIDATE = re.compile(r"""
    (?<![\w+/.-])                           # a comma may come before: a CSV field
    (?:\+|(?<!\d)00)?(?:\(\+?\d{1,5}\)[ -]?\d{1,12}|\d{1,15})
    (?: (?:[ ]?\(0?\d{1,5}\)[ ]?|[ ]?[./-][ ]?|[ ])\d{1,12} ){0,7}
    (?!\d|(?!x)\w|[./:-]\d)                  # "555-0143x12": the extension is taken after
""", re.X | re.A)
_EXTENSION = re.compile(r",?[ ]?(?:x\.?|ext\.?|extension|#)[ ]?\d{1,6}\b", re.I | re.A)
# North American numbers as written for decades, accepted without the library's
# area-code list (555 numbers are not assigned, yet they are written as phone
# numbers): (555) 123-4567 or 555-123-4567 with the same separator twice, optionally
# after "1-". Dates (2024-01-15), ISBNs and page ranges have other group lengths.
_NANP = re.compile(r"(?:1[ .-])?(?:\([2-9]\d\d\)[ ]?\d{3}[ .-]\d{4}|[2-9]\d\d([ .-])\d{3}\1\d{4})\Z", re.A)
# Shapes that are something else, whatever the library says: dates, dotted
# versions or addresses, thousands ("7 900 000"), year ranges ("1623-1632"), decimals,
# the digit groups of a card or IBAN.
_NOT_PHONE = re.compile(r"""
      \d{1,4}([./-])\d{1,2}\1\d{2,4}                # 25.12.2023, 2024-01-15, 12/25/23
    | \d{1,3}(?:\.\d{1,3}){3,}                      # 10.0.0.1, 1.2.3.4.5
    | \d{1,3}(?:[ .]\d{3})+                         # 7 900 000, 1.234.567
    | \d{4}-\d{2,4} | (?:1[5-9]|20)\d\d-\d+         # 1623-1632, 2019-000123
    | \d+\.\d+                                     # 89.5198415, 06.997406
    | \d{4}(?:[ ]\d{4})+(?:[ ]\d{1,3})?              # groups of four: a card's or an IBAN's
    | \d{5}-\d{4}                                   # a US ZIP+4 code: "Boston, MA 02110-1301"
    | \d{5}-\d{3}                                   # a Brazilian CEP: "01310-200"
    | (\d)\2+                                       # "0000000000"
""", re.X | re.A)
# Two of those shapes are also how some countries write phone numbers: "06.12.34.56.78" in
# France, "612 345 678" in Spain. They pass when the digits are a valid number grouped
# exactly as the library writes that country's numbers, and neither a decimal part nor a
# word follows: "Montant : 612 345 678,50 €", "612 345 678 habitantes" are amounts.
_DOTTED_OR_THOUSANDS = re.compile(r"0\d(?:\.\d\d){3,}|\d{2,3}(?:[ ]\d{2,3})+", re.A)
_DECIMAL_AFTER = re.compile(r"[.,]\d", re.A)
_UNIT_AFTER = re.compile(r" ?(?![xX]\.?(?:\d|\b)|ext)[^\W\d_]")  # "612 345 678 people", not " x12"
# A subtraction, not a number written with a spaced hyphen: "result = 635 * 4790 - 82093".
_ARITHMETIC_BEFORE = re.compile(r"[-+*/×÷=<>^%]\s*\Z|\d\s+\Z")
# An argument of a function call in code: "range(1, 947948399)" is a bound, whatever words precede it.
_CALL_ARGUMENT_BEFORE = re.compile(r"[A-Za-z_]\w*\([^()\n]*\Z")
_CALL_ARGUMENT_AFTER = re.compile(r"[^()\n]*\)")
# Words that say a number is a phone number (before it on its line, or heading its
# CSV column), searched in lower-cased text like digits.NOT_PII_WORDS.
_PHONE_WORDS = re.compile(r"""phone|handy|whats\ ?app|hotline|helpline|contact|kontakt|conta[ct]t?o
    |電話|携帯|連絡|問い合わせ
    |(?<![a-z])(?:tel|fon|fax|mobil|mob\b|cell|call|ring|sms|text\b|portable|gsm|on-?call|t[ée]l[ée]|m[oó]vil
                 |celular|numm?er|n[uú]mero|tlf|tfno|ll[aá]m|chiam|lig(?:ue|ar|a-?nos?)\b|joignable|appel
                 |anruf|erreichbar|bel(?:len)?\b|bereikbaar|direct\b|office\b|reach\ (?:me|us)|dial)""", re.X)
# (short words at a word's start, so not "string"; "llámenos", "chiamateci", "ligue para",
# "joignable au", "bel me op", "reach me on": ask for a call in the ten locales)
_LETTER_LABEL = re.compile(r"(?:^|\s)[TMF][.:]?[ ]?\Z")  # "T 030 1234567", "M: 06 12345678" (case kept)
# Regions whose national formats are tried, in order, for a number without '+'.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "JP", "BR", "IN")
_MIN_PHONE_DIGITS = 7


def _groups(s: str) -> list[int]:
    return [len(g) for g in re.findall(r"\d+", s)]


def _region_lengths(region: str) -> tuple[set[int], str]:
    """Lengths a national number may have in the region (the library's metadata), and
    the trunk prefix the region dials before it ('0', '1' in North America, or none)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return set(metadata.general_desc.possible_length), metadata.national_prefix or ""


_REGION_LENGTHS = {region: _region_lengths(region) for region in PHONE_REGIONS}  # loads each region once


_ALT_PREFIX = "PHONE_ALT_FORMAT_"


@functools.cache
def _alternate_formats() -> dict[int, list[phonenumbers.NumberFormat]]:
    """The alternate formats per country calling code, read from their public names in
    phonenumbers.data (PHONE_ALT_FORMAT_34, ...): the table the library's matcher uses."""
    formats = {int(name[len(_ALT_PREFIX):]): value for name, value in vars(phonenumbers.data).items()
               if name.startswith(_ALT_PREFIX)}
    if not formats:  # without them Spain's "612 345 678" would silently stop being a number
        raise UserError(f"phonenumbers {phonenumbers.__version__} has no phonenumbers.data.{_ALT_PREFIX}* "
                        "tables: install phonenumbers==9.0.43, the version requirements.txt pins")
    return formats


def _formats_groups(number: phonenumbers.PhoneNumber, nsn: str, trunk: str) -> Iterator[list[int]]:
    """Digit-group lengths of the ways the number's country writes it: the library's national
    format, its alternate formats (libphonenumber's PhoneNumberAlternateFormats, what its
    matcher accepts as "exact grouping": "612 345 678" in Spain), and the area or mobile code
    followed by the rest unbroken ("347 1234567" in Italy, "030 12345678" in Germany)."""
    national = _groups(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    yield national
    if len(national) > 2:
        yield [national[0], sum(national[1:])]
    for fmt in _alternate_formats().get(number.country_code, ()):
        if fmt.leading_digits_pattern and not re.match(fmt.leading_digits_pattern[0], nsn):
            continue
        m = re.fullmatch(fmt.pattern, nsn)
        if m:
            groups = [len(g) for g in m.groups()]
            groups[0] += len(trunk)  # the trunk prefix is written with the first group
            yield groups


def _grouping_ok(number: phonenumbers.PhoneNumber, candidate: str, trunk: bool) -> bool:
    """The candidate's digit groups are one of the ways its country writes the number."""
    groups = _groups(candidate)
    nsn = phonenumbers.national_significant_number(number)
    for expected in _formats_groups(number, nsn, "0" if trunk else ""):
        if groups == expected:
            return True
        if not trunk and expected[0] > 3 and groups[0] == expected[0] - 1 and groups[1:] == expected[1:] \
                and phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)[0] == "0":
            return True  # Indian mobiles are written without the trunk '0': "98765 43210"
    return False


@functools.lru_cache(maxsize=4096)
def _national_ok(candidate: str, digits: str, structured: bool, context: bool, strict: bool = False) -> bool:
    """A number without '+': possible in one of PHONE_REGIONS, and written as one. strict: the
    candidate has a shape of something else (dotted, thousands) and must be a valid number
    grouped as its country writes it, context or not."""
    trunk = digits[0] == "0"
    if not (context or structured or trunk):
        return False  # an unbroken number that no word calls a phone number: an id, a count
    for region in PHONE_REGIONS:
        lengths, prefix = _REGION_LENGTHS[region]
        if len(digits) - (bool(prefix) and digits.startswith(prefix)) not in lengths:
            continue  # the library would say "not possible": skip the parse
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(number):
            continue
        if context and not strict:  # "Tel: 030 1234567", "phone,...\n...,4074897978"
            return True
        if not (phonenumbers.is_valid_number_for_region(number, region) or context):
            continue  # (strict, with a phone word before it: "Tel. 06.93.26.69.40" need only be possible)
        if trunk and not strict and (structured or len(digits) > 8):
            return True  # a valid number with its trunk prefix: "(0161) 4960066", "0232781286";
            # eight digits unbroken and no phone word is a code: a postcode, an id ("01310200")
        # No trunk prefix (Spain, Italian mobiles, Brazil, India): valid, and grouped the way the
        # region writes its numbers, "612 34 56 78", "(11) 3915-0008".
        # (a '/' between digits without a trunk prefix: "RFC 2047/2243")
        if structured and "/" not in candidate and _grouping_ok(number, candidate, trunk):
            return True
    return False


def _merge_split_digit(candidate: str) -> str:
    """ "(61) 9 8765-4321" -> "(61) 98765-4321": Brazilian mobiles write their leading 9 apart."""
    return re.sub(r"(?<=[\d)] )(\d) (?=\d{4}-\d{4}\Z)", r"\1", candidate, count=1)


def _phone_ok(text: str, start: int, candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not _MIN_PHONE_DIGITS <= len(digits) <= 15 or number_context(text, start, NOT_PII_WORDS):
        return False
    end = start + len(candidate)
    if text[start - 1:start] == ":" and text[end:end + 1] == ":":
        return False  # a field of a colon-separated identifier: "arn:aws:iam::123456789012:role"
    if " - " in candidate and _ARITHMETIC_BEFORE.search(text, max(0, start - 8), start):
        return False  # "635 * 4790 - 82093"
    groups = _groups(candidate)
    if len(groups) > 1 and groups[-1] == 1:
        return False  # "+35236450.6", ISBN-10 "0-306-40615-2": no number ends in a 1-digit group
    intl = candidate[0] == "+" or candidate.startswith("(+")
    if intl or (candidate.startswith("00") and not candidate.startswith("000")):
        try:
            number = phonenumbers.parse("+" + digits[2 * (not intl):], None)
        except phonenumbers.NumberParseException:
            return False
        # E.164 length, and a country code the library knows; "00" is also a run of zeros
        # ("001100 111111"), so there the number must be possible too.
        return len(digits) >= 9 and (intl or phonenumbers.is_possible_number(number))
    if _NANP.match(candidate):
        return True
    if len(groups) == 1 and _CALL_ARGUMENT_BEFORE.search(text, max(0, start - 80), start) \
            and _CALL_ARGUMENT_AFTER.match(text, end):
        return False  # "randint(1, 947948399)": an unbroken number passed to a function
    context = number_context(text, start, _PHONE_WORDS, _LETTER_LABEL)
    if len(digits) < 8:
        return False
    if not context and digits[0] != "0" and set(groups) == {2}:
        return False  # a row of bytes or two-digit values, "44 33 22 11": the ten regions write no number so
    strict = False
    if _NOT_PHONE.fullmatch(candidate) and not (context and " " in candidate):
        # with a phone word before it, "345 563 447" is a number, not thousands
        if not _DOTTED_OR_THOUSANDS.fullmatch(candidate) or _DECIMAL_AFTER.match(text, end) \
                or _UNIT_AFTER.match(text, end):
            return False
        strict = True
    if len(groups) > 1 and min(groups) == 1:
        merged = _merge_split_digit(candidate)
        if merged == candidate:
            return False  # "0 711348489", "1-2" ("+33 1 ..." had its '+')
        candidate, groups = merged, _groups(merged)
    if candidate.count("/") > 1 or digits in "01234567890":
        return False  # "01/19/04 01/20/04"; "0123456789"
    return _national_ok(candidate, digits, len(groups) > 1, context, strict)


def find_phones(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in in_runs(_PHONE_CANDIDATE, text, runs):
        start, end = m.span()
        candidate = m.group()
        # A run may carry a date or a second number after the phone number, one
        # space away: try shorter candidates, dropping a trailing group at a time.
        for _ in range(3):
            if _phone_ok(text, start, candidate):
                ext = _EXTENSION.match(text, start + len(candidate))
                yield start, ext.end() if ext else start + len(candidate)
                break
            cut = candidate.rfind(" ")
            if cut <= 0:
                break
            candidate = candidate[:cut].rstrip(" (")

