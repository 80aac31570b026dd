"""Find personal data and secrets in text and replace them with typed placeholders.

`PiiScrubber(["email", "phone"]).scrub(text)` returns the text with every hit
replaced by its kind's placeholder (`<EMAIL>`, `<PHONE>`, ...) and the number of
hits per kind. Kinds: email, phone, ipv4, ipv6, credit_card, iban, secret.

Why regexes, and one library: Presidio and scrubadub pull in spaCy models and are
far too slow for a corpus pass, and datatrove's PII formatter covers only e-mails
and IP addresses. Hand-written rules find the candidates at tens of MB/s. Which
digit runs are phone numbers, though, depends on every country's numbering plan,
and that is phonenumbers' job (Google's libphonenumber metadata, what presidio
uses): it parses each candidate for the regions in PHONE_REGIONS and says whether
the number is possible, valid, and how the region groups its digits (its national
format and the alternate formats its matcher accepts, "612 345 678" in Spain). No
numbering plan is written here. Full-width digits ("０９０－...") are folded to ASCII,
one character for one, before the digit kinds look at a text.

The rules aim at precision on literary text and code (years, verse references,
times, page ranges, versions and OIDs must survive) as much as at recall on real
data, so every candidate is checked after the regex: phonenumbers and the words
around a phone number, the issuer prefix and Luhn sum for cards, the mod-97 check
for IBANs, the key name and the shape of a value for secrets. A hit is replaced
whole: a secret is read to its closing quote or the end of its config line, never
cut at punctuation inside it, and a bounce address loses its tag as well.
bench/pii.py measures recall and precision on a labelled set (bench/pii/).

Speed: Python's regex engine tries a pattern that starts with a character class
at every position, but jumps between occurrences of a leading literal at C
speed. So each rule starts from a cheap trigger (`@`, `::`, `at`, a run of digits,
`://`, a literal like `_` or `eyJ`, a ':' or '=' found by str.find) and the full
regex only runs in a small window around it. One pass finds the digit runs shared
by phone, card, IPv4 and IBAN; phonenumbers is called only for the few runs that
are shaped like a phone number, and its verdicts are cached.
"""
from __future__ import annotations

import bisect
import functools
import re
from typing import Iterator

import phonenumbers

from stages.lib.data.pii.kinds import PLACEHOLDERS

# When hits of two kinds overlap, the earlier kind here wins: a secret may contain
# an '@' or digit groups, an IBAN contains card-like digit groups, an IPv6 address
# can end in an IPv4 address.
PRIORITY = ("secret", "email", "iban", "credit_card", "phone", "ipv6", "ipv4")

Span = tuple[int, int]


# --------------------------------------------------------------------------- email

# The local part is matched backwards from each '@' (a pattern that starts with
# the local part would be tried at every letter of the text). A name, '@', dotted
# labels, and a TLD of letters: "Th' @ the gate", "@@@" and "user@localhost" fail.
# '=' and '/' are allowed for bounce addresses (VERP "bounce-ann=example.com@lists...",
# BATV "prvs=1a2b=ann@...", SRS "SRS0=aO/p=ON=example.org=ann@..."), which must go whole.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+=/-]{1,64}\Z", re.A)  # searched with endpos = the '@'
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b", re.A)
_RETINA_IMAGE = re.compile(r"\d+(?:\.\d+)?x\.", re.A)  # "logo@2x.png" is a file name


def _email_local_start(text: str, start: int, at: int) -> int:
    """Where the local part that the regex found in text[start:at] really starts."""
    local = text[start:at]
    if "=" in local:
        # "email=ann@example.com" (a query or a config line) is a key, '=', an address;
        # a bounce address has two '=' or a '-'/'+' tag before its one '='.
        key = local[:local.index("=")]
        if local.count("=") == 1 and not any(c in key for c in "-+"):
            start += len(key) + 1
    elif "/" in local:  # "path/ann@example.com": only SRS puts a '/' in the local part
        start += local.rindex("/") + 1
    while start < at and text[start] == ".":  # a local part cannot start with a dot
        start += 1
    return start


def _find_emails(text: str, runs: list[Span]) -> Iterator[Span]:
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1) if local else None
        # "ann@example dot com": a real '@' with a spelled-out dot after it.
        spelled = _OBFUSCATED_DOMAIN.match(text, at + 1) if local else None
        if spelled and (domain is None or spelled.end() > domain.end()) and _SPELLED_DOT.search(spelled.group()):
            domain = spelled
        if domain and not _RETINA_IMAGE.match(domain.group()):
            start = _email_local_start(text, local.start(), at)
            if start < at:
                yield start, domain.end()
        at = text.find("@", domain.end() if domain else at + 1)
    yield from _find_obfuscated_emails(text)


# Addresses written to fool harvesters: "ann at example dot com", "ann(at)example.de",
# "ann [at] example [dot] com", "ann{at}example{dot}com". Found from the "at" (in
# brackets, or a bare " at " that only counts with a spelled-out "dot" after it, or
# with a local part that no English word has: "ann.lee at example.com", "ann99 at ...").
# Both regexes start with a literal, "at" or "AT", for the fast scan, and look back for
# the bracket or space before it.
_OBFUSCATED_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z", re.A)  # searched with endpos = the "at"
_OBFUSCATED_DOT = r"(?:[ ]?[\[({<][ ]?(?:dot|DOT)[ ]?[\])}>][ ]?|[ ](?:dot|DOT)[ ]|\.)"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OBFUSCATED_DOMAIN = re.compile(rf"{_LABEL}(?:{_OBFUSCATED_DOT}{_LABEL})*{_OBFUSCATED_DOT}[A-Za-z]{{2,24}}\b", re.A)
_AT_FORMS = tuple(re.compile(rf"""{at}(?:
      (?<=[\[({{<]{at})[ ]?[\])}}>][ ]?                        # (at) [at] {{at}} <at>
    | (?<=[\[({{<][ ]{at})[ ]?[\])}}>][ ]?                     # ( at ) [ at ]
    | (?P<bare>(?<=[ ]{at})[ ](?={_LABEL}{_OBFUSCATED_DOT}))   # " at " before a dotted name
    )""", re.X | re.A) for at in ("at", "AT"))
_SPELLED_DOT = re.compile(r"(?i)[\[({<] ?dot|\sdot\s")


def _obfuscated_ats(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, bare) of each " at ", " AT " or bracketed at that a domain could follow."""
    for pattern in _AT_FORMS:
        for m in pattern.finditer(text):
            start = m.start() - 1  # the space or the bracket before "at"
            if not m.group("bare"):
                start -= text[start - 1:start] in ("(", "[", "{", "<")  # "( at )": back to the bracket
                start -= text[start - 1:start] == " "
            yield start, m.end(), bool(m.group("bare"))


def _find_obfuscated_emails(text: str) -> Iterator[Span]:
    for at_start, at_end, bare in _obfuscated_ats(text):
        domain = _OBFUSCATED_DOMAIN.match(text, at_end)
        if not domain:
            continue
        local = _OBFUSCATED_LOCAL.search(text, max(0, at_start - 64), at_start)
        if not local:
            continue
        spelled_dot = "." not in domain.group() or _SPELLED_DOT.search(domain.group())
        if bare and not (spelled_dot or re.search(r"[._\d]", local.group())):
            continue  # "look at example.com", "arrived at Amazon.com"
        yield local.start(), domain.end()


# --------------------------------------------------------------------------- digit runs

# One scan finds the runs of digits and separators that could hold a phone number,
# a card number or an IPv4 address (7+ characters, so years, "1-2" and "3:16" are
# skipped without a second look), or the check digits of an IBAN ("GB82", "gb82").
_DIGIT_RUN = re.compile(r"\d(?:[\d ()./+-]{6,}|(?<=[A-Za-z]{2}\d)\d)", re.A)
_MIN_RUN = 7


def _digit_runs(text: str) -> list[Span]:
    return [m.span() for m in _DIGIT_RUN.finditer(text)]


def _in_runs(pattern: re.Pattern, text: str, runs: list[Span]) -> Iterator[re.Match]:
    """Matches of `pattern` inside each long digit run, with a little context each side.

    The two characters before take a leading '+', '(' or "(+"; the two after are a non-run
    character and the one after it, so look-aheads at the window's end ("14:12",
    "x12") decide as they would on the whole text.
    """
    for start, end in runs:
        if end - start >= _MIN_RUN:
            yield from pattern.finditer(text, max(0, start - 2), end + 2)


# --------------------------------------------------------------------------- phone

# A candidate is a run of digit groups with single separators, maybe a leading
# '+' or '00', an area code in parentheses, a "(0)" and an extension: "+44 (0)20
# 7946 0958", "(0161) 4960066", "080-9141-7776", "202.555.0143 x12". Which of
# them are numbers, and in which country, is phonenumbers' call (the library that
# presidio uses: Google's libphonenumber metadata), not a numbering plan written here.
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
# Words that say a number is a phone number (before it on its line, or heading its
# CSV column), or that it is not a phone or card number: an order, an ISBN, an EAN.
# Both are searched in the lower-cased 40 characters before the number (a case-sensitive
# regex on lower-case text is several times faster than a case-insensitive one).
_PHONE_WORDS = re.compile(r"""phone|handy|whats\ ?app|hotline|helpline|contact|kontakt|conta[ct]t?o|電話|携帯|連絡|問い合わせ
    |(?<![a-z])(?:tel|fon|fax|mobil|mob\b|cell|call|ring|sms|text\b|portable|gsm|on-?call|t[ée]l[ée]|m[oó]vil
                 |celular|numm?er|n[uú]mero|tlf|tfno|ll[aá]m|chiam|lig(?:ue|ar|a-?nos?)\b|joignable|appel
                 |anruf|erreichbar|bel(?:len)?\b|bereikbaar|direct\b|office\b|reach\ (?:me|us)|dial)""", re.X)
# (short words at a word's start, so not "string"; "llámenos", "chiamateci", "ligue para",
# "joignable au", "bel me op", "reach me on": ask for a call in the ten locales)
_LETTER_LABEL = re.compile(r"(?:^|\s)[TMF][.:]?[ ]?\Z")  # "T 030 1234567", "M: 06 12345678" (case kept)
_NOT_PII_WORDS = re.compile(r"""(?<![^\W\d_])(?:isbn|issn|order|invoice|rechnung|facture|factuur|ref|serial|id
    |tracking|ticket|case|sku|ean|gtin|upc|page|pp|vol|version|build|account|acct|iban|bic|zip|postcode|plz|cep
    |part|cat|catalog|model|item|art|lot|batch|txn|transaction|amount|total|montant|betrag|importe|valor
    |population|einwohner|habitantes|abitanti|inwoners)
    (?:\W{1,3}(?:(?:no|nr|number|num)\b|n°))?\W{0,4}\Z""", re.X)
# Regions whose national formats are tried, in order, for a number without '+'.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "JP", "BR", "IN")
_MIN_PHONE_DIGITS = 7


def _number_context(text: str, start: int, pattern: re.Pattern) -> bool:
    """pattern occurs in the 40 characters before start on the same line, or, for a
    delimited field, in its column's name on the document's first line (a CSV header)."""
    window_start = max(0, start - 40)
    window_start = max(window_start, text.rfind("\n", window_start, start) + 1)
    window = text[window_start:start]
    if pattern.search(window.lower()):
        return True
    if pattern is _PHONE_WORDS and _LETTER_LABEL.search(window, max(0, len(window) - 4)):
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
    return column < len(header) and bool(pattern.search(header[column].strip("\"' ").lower()))


def _groups(s: str) -> list[int]:
    return [len(g) for g in re.findall(r"\d+", s)]


def _region_lengths(region: str) -> tuple[set[int], str]:
    """Lengths a national number may have in the region (the library's metadata), and
    the trunk prefix the region dials before it ('0', '1' in North America, or none)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return set(metadata.general_desc.possible_length), metadata.national_prefix or ""


_REGION_LENGTHS = {region: _region_lengths(region) for region in PHONE_REGIONS}  # loads each region once


def _formats_groups(number: phonenumbers.PhoneNumber, nsn: str, trunk: str) -> Iterator[list[int]]:
    """Digit-group lengths of the ways the number's country writes it: the library's national
    format, its alternate formats (libphonenumber's PhoneNumberAlternateFormats, what its
    matcher accepts as "exact grouping": "612 345 678" in Spain), and the area or mobile code
    followed by the rest unbroken ("347 1234567" in Italy, "030 12345678" in Germany)."""
    national = _groups(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    yield national
    if len(national) > 2:
        yield [national[0], sum(national[1:])]
    for fmt in _ALT_FORMATS.get(number.country_code, ()):
        if fmt.leading_digits_pattern and not re.match(fmt.leading_digits_pattern[0], nsn):
            continue
        m = re.fullmatch(fmt.pattern, nsn)
        if m:
            groups = [len(g) for g in m.groups()]
            groups[0] += len(trunk)  # the trunk prefix is written with the first group
            yield groups


_ALT_FORMATS = phonenumbers.phonenumbermatcher._ALT_NUMBER_FORMATS  # the matcher's table (public data, private name)


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
    if not _MIN_PHONE_DIGITS <= len(digits) <= 15 or _number_context(text, start, _NOT_PII_WORDS):
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
    context = _number_context(text, start, _PHONE_WORDS)
    if len(digits) < 8:
        return False
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


def _find_phones(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in _in_runs(_PHONE_CANDIDATE, text, runs):
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


# --------------------------------------------------------------------------- credit card

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


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _find_cards(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in _in_runs(_CARD, text, runs):
        digits = re.sub(r"\D", "", m.group())
        prefix_ok = _CARD_PREFIX[len(digits)].match(digits)
        if len(digits) == 12 and text[m.start() - 1:m.start()] == ":":
            continue  # an AWS account id in an ARN ("...:eu-west-1:682685515392:")
        if prefix_ok and _luhn_ok(digits) and not _number_context(text, m.start(), _NOT_PII_WORDS):
            yield m.span()


# --------------------------------------------------------------------------- ipv4

# Four octets 0-255 without leading zeros, not inside a longer dotted sequence
# ("1.2.3.4.5") or glued to a word ("v1.2.3.4"); "1.2.3" has too few octets.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_CORE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV4 = re.compile(rf"(?<![\w.]){_IPV4_CORE}(?!\w|\.\d)", re.A)


# Four numbers that name a version, an OID or a section, not a host: right after a
# word like "version" (or a name that contains it, APP_VERSION=, __version__ = "),
# a pin (==, >=, ~=), a product ("Chrome/", "rv:") or an image tag (".../app:").
# Not after '@': "user:password@10.0.0.1" is a host.
_NOT_IPV4_BEFORE = re.compile(r"""(?:
      (?<![A-Za-z])(?i:version|ver|release|build|firmware|fw|revision|rev|rv|oid|sdk|driver|kernel|bios
        |patch|section|sec|chapter|clause|article|figure|fig|table|step|item|rule)[\w-]*[\s.:=#"'(]*
    | (?:==|[<>~!]=|[~^])\s* | [A-Za-z]/ | /[\w.-]+: | §\s* )\Z""", re.X | re.A)


def _find_ipv4(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in _in_runs(_IPV4, text, runs):
        if not _NOT_IPV4_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            yield m.span()


# --------------------------------------------------------------------------- iban

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


def _iban_checksum_ok(iban: str) -> bool:
    rearranged = (iban[4:] + iban[:4]).upper()
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1  # A=10 ... Z=35


def _find_ibans(text: str, runs: list[Span]) -> Iterator[Span]:
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
                _iban_checksum_ok(text[m.start():end].replace(" ", "")):
            yield m.start(), end
        elif chars < length and not text[m.end():m.end() + 1].isalnum() and \
                _iban_checksum_ok(m.group().replace(" ", "")):
            # Too short for its country, yet the check digits hold: a typo, or a test
            # generator's number (Faker's en_IN IBANs are one short); account data all the same.
            yield m.span()


# --------------------------------------------------------------------------- ipv6

# Full and compressed forms, "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1", and
# IPv4-mapped "::ffff:192.0.2.1". Every form contains "::" or ":hex:", which a fast
# literal scan finds; "12:30:45" and "3:16" never get that far, and "Foo::Bar" fails
# the word boundary. A hit must contain a digit, so words like "cafe::face" stay.
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(rf"""
    (?<![\w:])
    (?: (?:{_H}:){{7}}{_H}
      | (?:{_H}:){{1,4}}:{_IPV4_CORE}                   # 64:ff9b::192.0.2.1
      | ::(?:[fF]{{4}}(?::0{{1,4}})?:)?{_IPV4_CORE}      # ::ffff:192.0.2.1
      | (?:{_H}:){{1,7}}:
      | (?:{_H}:){{1,6}}:{_H}
      | (?:{_H}:){{1,5}}(?::{_H}){{1,2}}
      | (?:{_H}:){{1,4}}(?::{_H}){{1,3}}
      | (?:{_H}:){{1,3}}(?::{_H}){{1,4}}
      | (?:{_H}:){{1,2}}(?::{_H}){{1,5}}
      | {_H}:(?::{_H}){{1,6}}
      | :(?::{_H}){{1,7}} )
    (?![\w:]|\.\d)
""", re.X | re.A)
_IPV6_HINT = re.compile(r"::|:[0-9A-Fa-f]{1,4}:", re.A)
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]*", re.A)


def _find_ipv6(text: str, runs: list[Span]) -> Iterator[Span]:
    if ":" not in text:
        return
    pos = 0
    while hint := _IPV6_HINT.search(text, pos):
        # An address starts at most 4 characters before its first colon; the window
        # ends one character after the run of address characters, for the look-ahead.
        run_end = _IPV6_CHARS.match(text, hint.start()).end()
        for m in _IPV6.finditer(text, max(pos, hint.start() - 4), run_end + 1):
            if any(c.isdigit() for c in m.group()):
                yield m.span()
        pos = max(run_end, hint.end())


# --------------------------------------------------------------------------- secret

# Tokens with a published prefix. Each regex starts at a literal character that every
# token of its family contains ('_', '-', 'A', 'S', 'eyJ', ':AA', '-----BEGIN') and
# checks the letters before it with a look-behind, for the literal-scan speed-up; the
# token then starts at the beginning of that run of letters (or digits, for Telegram).
_TOKEN_AT_UNDERSCORE = re.compile(r"""_(?:
      (?<=\bgh[pousr]_)[A-Za-z0-9]{20,}               # GitHub ghp_ (personal), gho_, ghs_, ghu_, ghr_
    | (?<=\bgithub_)pat_\w{22,}                       # GitHub fine-grained personal token
    | (?<=\b[spr]k_)(?:live|test)_[A-Za-z0-9]{16,}    # Stripe sk_live_, pk_live_, sk_test_, rk_live_
    | (?<=\bwhsec_)[A-Za-z0-9+/=]{24,}                # Stripe webhook signing secret
    | (?<=\bnpm_)[A-Za-z0-9]{36}                      # npm access token
    | (?<=\bhf_)[A-Za-z0-9]{30,}                      # Hugging Face
    | (?<=\bshp[a-z]{2}_)[a-fA-F0-9]{32}              # Shopify shpat_, shpss_, shpca_, shppa_
    | (?<=\bdop_)v1_[a-f0-9]{64}                      # DigitalOcean
    | (?<=\blin_)api_[A-Za-z0-9]{32,}                 # Linear
    | (?<=\bglc_)[\w-]{20,} | (?<=\bglsa_)[\w-]{20,}   # Grafana
    )\b""", re.X | re.A)
_TOKEN_AT_HYPHEN = re.compile(r"""-(?:
      (?<=\bxox[abeoprs]-)[A-Za-z0-9-]{10,}           # Slack xoxb-, xoxp-, xoxe-, ...
    | (?<=\bxapp-)[A-Za-z0-9-]{10,}                   # Slack app-level token
    | (?<=\bsk-)(?=[\w-]{0,64}?\d)[\w-]{20,}          # OpenAI/Anthropic sk-..., sk-proj-..., sk-ant-...; needs a digit
    | (?<=\bgl[a-z]{2}-)[\w-]{20,}                    # GitLab glpat-, glptt-, glcbt-, gldt-, glrt- (personal,
    | (?<=\bgl[a-z]{3}-)[\w-]{20,}                    #   trigger, CI job, deploy, runner tokens)
    | (?<=\bgl[a-z]{4}-)[\w-]{20,}
    | (?<=\bkey-)[0-9a-f]{32}\b                       # Mailgun
    | (?<=\bpypi-)AgE[\w-]{50,}                       # PyPI upload token
    | (?<=\bPMAK-)[0-9a-f]{24}-[0-9a-f]{34}           # Postman
    | (?<=\bNRAK-)[A-Z0-9]{27}                        # New Relic
    | (?<=\bsq0[a-z]{3}-)[\w-]{22,}                   # Square
    )""", re.X | re.A)
_TOKEN_AT_A = re.compile(r"""A(?<!\wA)(?:             # an 'A' that starts a word
      (?:KIA|SIA)[0-9A-Z]{16}\b                       # AWS access key id (long-term, temporary)
    | Iza[\w-]{35}(?![\w-])                           # Google API key
    | GE-SECRET-KEY-1[0-9A-Z]{58}                     # age private key
    )""", re.X | re.A)
_TOKEN_AT_S = re.compile(r"""S(?<![\w.]S)(?:          # an 'S' that starts a word
      K[0-9a-fA-F]{32}\b                              # Twilio API key
    | G\.[\w-]{22}\.[\w-]{43}(?![\w-])                # SendGrid
    )""", re.X | re.A)
_TOKEN_AT_H = re.compile(r"h(?<![\w.]h)vs\.[\w-]{24,}", re.A)  # HashiCorp Vault service token
_TOKEN_AT_Y = re.compile(r"y(?<![\w.]y)a29\.[\w-]{20,}", re.A)  # Google OAuth access token
_TELEGRAM = re.compile(r":AA(?<=\d:AA)[\w-]{33}(?![\w-])", re.A)  # bot id ':' token
_JWT = re.compile(r"eyJ(?<![\w-]eyJ)[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*", re.A)  # base64 '{"' . '{"' . signature
# PEM or PGP private key, header to footer; without a footer, the base64 lines that follow.
_PRIVATE_KEY = re.compile(r"""-----BEGIN[A-Z0-9 ]*PRIVATE\ KEY(?:\ BLOCK)?-----
    (?: [\s\S]{0,20000}?-----END[A-Z0-9 ]*PRIVATE\ KEY(?:\ BLOCK)?-----
      | (?:\s+[A-Za-z0-9+/=]{16,})* )""", re.X | re.A)

# Secrets inside URLs, found from each "://". Credentials: "postgres://ann:pw@db/x"
# loses "ann:pw" (the user names a person as often as not), up to the last '@' before
# the host, so a password with an '@' in it goes whole and is not taken for an e-mail
# address. Webhook URLs carry their secret in the path: the whole URL goes. A Telegram
# bot token is a path segment of the Bot API's URLs ("/bot<bot id>:<secret>/sendMessage"),
# whatever its letters: the token goes.
_URL_CREDENTIALS = re.compile(r"""[^\s:/@?#"'<>]*:[^\s/?#"'<>]+(?=@[\w\[])""", re.A)
_WEBHOOK = re.compile(r"""https?://(?:
      hooks\.slack\.com/(?:services|workflows|triggers)/
    | (?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/
    | [\w-]+\.webhook\.office\.com/webhookb2/ | outlook\.office(?:365)?\.com/webhook/
    | hooks\.zapier\.com/hooks/catch/ | maker\.ifttt\.com/(?:trigger|use)/ | chat\.googleapis\.com/v1/spaces/
    )[^\s"'<>`)\]}]+""", re.X | re.A | re.I)
_TELEGRAM_URL = re.compile(r"https?://api\.telegram\.org/(?:file/)?bot(\d{5,12}:[\w-]{30,})", re.A | re.I)


def _find_url_secrets(text: str) -> Iterator[Span]:
    pos = text.find("://")
    while pos != -1:
        scheme = pos
        while scheme > 0 and pos - scheme < 16 and (text[scheme - 1].isalnum() or text[scheme - 1] in "+.-"):
            scheme -= 1
        hook = _WEBHOOK.match(text, scheme)
        if hook:
            yield hook.span()
        elif telegram := _TELEGRAM_URL.match(text, scheme):
            yield telegram.span(1)
        elif credentials := _URL_CREDENTIALS.match(text, pos + 3):
            yield credentials.span()
        pos = text.find("://", pos + 3)


# A value assigned to a key-ish name: "api_key=...", "token: ...", "password = '...'",
# "Authorization: Bearer ...". The value is replaced and the name kept. The key name is
# looked for before each ':' and '=' (see _key_names); the value is then read by hand, whole: quoted, to its closing quote; on a config line ("DB_PASSWORD=...",
# "  password: ..."), to the end of the line; else to the next space, or to a '&' or ';'
# that starts the next "name=" (a URL query, a connection string). Punctuation inside a
# value never ends it early: a half-replaced password is a leaked one.
_KEY_NAME = re.compile(r"""(?<![A-Za-z0-9:/])
    (?P<name>(?i:api[_-]?key|apikey|client[_-]?secret|secret|auth[_-]?token|access[_-]?token|token
      |pass(?:word|wd|phrase)?|pwd|private[_-]?key|access[_-]?key|account[_-]?key|shared[_-]?access[_-]?key
      |authorization|auth|credentials?|sig))
    (?P<suffix>[\w-]*)["']?[ \t]*[:=](?![:=/])\Z""", re.X | re.A)  # searched with endpos = after the ':' or '='

# Names whose value is about a secret, not the secret: secret_name, token_url, api_key_id,
# password_min_length, SECRET_KEY_FILE, TOKEN_TTL_SECONDS ...
_NOT_SECRET_SUFFIX = re.compile(r"""(?i)(?:name|names|id|ids|ref|path|file|dir|url|uri|endpoint|host|arn|length|len
    |min|max|type|header|policy|version|count|expiry|expires|expiration|ttl|seconds|secs|minutes|days|ms|field
    |label|prefix|hint|reset|required|rotation|algorithm|algo|provider|enabled|mode|scope|format|location|method
    |timeout|lifetime|age|source|manager|store|env|var|hash|salt|rounds|cost|strength|policy|pattern|regex)\Z""", re.X)
_PASSWORD_NAMES = ("password", "passwd", "passphrase", "pwd")  # say "this is a password" even in prose
_PLAIN_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+")
_SCHEME = re.compile(r"(?i:bearer|basic|token)[ \t]+(?=\S)", re.A)
_VALUE_END = re.compile(r"""\s|[&;](?=[\w.-]+=)|,(?=\s)|["'<>]""", re.A)  # for an unquoted value
_CONFIG_VALUE_END = re.compile(r"""\s+\#|[&;](?=[\w.-]+=)""", re.A)  # for one that ends its line
_SPACE = re.compile(r"\s")
# A passphrase: three words or more. Not joined by '_' alone: "client_secret_basic" is an
# identifier (an enum value, a name in code), not a secret.
_WORDS = re.compile(r"[A-Za-z]+(?:[-_. ][A-Za-z]+){2,}")
_SNAKE_CASE = re.compile(r"[A-Za-z]+(?:_[A-Za-z]+)+")
_LOWER_WORDS = re.compile(r"[a-z]+(?: [a-z]+){1,7}")  # an unquoted passphrase: "correct horse battery staple"
_PLACEHOLDER = re.compile(r"""(?ix)
      none|null|nil|true|false|yes|no|empty|required|optional|redacted|hidden|masked|secret|password|passwd
    | ,.* | changeme|change[_-]me|replace[_-]?me|todo|tbd|n/?a|undefined|default|example|dummy|test|foo|bar|mypassword
    | (.)\1{2,} | <[^>]*>? | \$\{.*\}? | (?-i:\$[A-Z_][A-Z0-9_]*) | \{\{.*\}\}? | %\(.*\)s? | %[A-Z_]+% | your[_-].* | .*[_-]here
    | (?:os\.environ|process\.env|getenv|env\(|environ\[).* | [a-z]+:// \S* | [~/.]\S*
    | (?-i:[a-z0-9_.-]+(?:/[a-z0-9_.-]+)+)            # a path or a reference: prod/payments/db-credentials
""")


def _looks_random(value: str) -> bool:
    """8+ characters without spaces that look generated: letters and digits, and long (12+),
    or 2+ digits, or mixed case; or three of lower, upper, digit, symbol ('-', '_' and '.'
    join words, they are no symbols): "a1b2c3d4e5f6", "hunter22", "xK9pLmQ2", "$m*XQmaR#RCT"
    pass; "2nd-rate", "1667" and "Basic, and the bearer" do not."""
    if len(value) < 8 or any(c.isspace() for c in value):
        return False
    lower, upper = any(c.islower() for c in value), any(c.isupper() for c in value)
    digits = sum(c.isdigit() for c in value)
    symbol = any(not c.isalnum() and c not in "-_." for c in value)
    if lower + upper + (digits > 0) + symbol >= 3:
        return True
    if not digits or not (lower or upper):
        return False
    return len(value) >= 12 or digits >= 2 or (lower and upper)


_KEY_PREFIX = re.compile(r"""[ \t]*(?:export[ \t]+|-[ \t]+)?["']?(?:[\w.-]*[_.-])?""", re.A)
_KEY_VALUE_LINE = re.compile(r"""[ \t]*(?:export[ \t]+|-[ \t]+)?["']?[\w.-]+["']?[ \t]*[:=]""", re.A)


def _config_line(text: str, key_start: int) -> bool:
    """The key starts a line of a config file: "DB_PASSWORD=...", "  secret: ...", with a
    line of the same shape before or after it. Verse wraps anywhere: "...it might\npass:
    yet the scarfs..." is a line that starts with a key name, in no config file."""
    line_start = text.rfind("\n", 0, key_start) + 1
    if not _KEY_PREFIX.fullmatch(text, line_start, key_start):  # only "  ", "export ", "POSTGRES_" before it
        return False
    previous = text.rfind("\n", 0, max(0, line_start - 1)) + 1
    if line_start and _KEY_VALUE_LINE.match(text, previous, line_start):
        return True
    line_end = text.find("\n", key_start)
    return line_end != -1 and bool(_KEY_VALUE_LINE.match(text, line_end + 1))


def _value_span(text: str, key: re.Match, config_line: bool) -> tuple[int, int, str]:
    """Start and end of the value assigned to the key, and its quote character (or "")."""
    pos = key.end()
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    quote = text[pos] if text[pos:pos + 1] in ('"', "'") else ""
    pos += len(quote)
    if scheme := _SCHEME.match(text, pos):  # "Bearer abc...": the token is the value
        pos = scheme.end()
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end == -1 else line_end
    if quote:
        end = text.find(quote, pos, line_end)
        end = line_end if end == -1 else end
    elif config_line and text[pos - 1] != "=" and re.search("(?i)pass|pwd|secret", key.group("name")):
        stop = _CONFIG_VALUE_END.search(text, pos, line_end)  # "password: correct horse battery staple"
        end = stop.start() if stop else line_end
    elif config_line:  # "DB_PASSWORD=ttKVTuKX'purB6C": no quoting, so quotes are part of the value
        stop = _CONFIG_VALUE_END.search(text, pos, line_end) or _SPACE.search(text, pos, line_end)
        end = stop.start() if stop else line_end
    else:
        stop = _VALUE_END.search(text, pos, line_end)
        end = stop.start() if stop else line_end
    end = min(end, pos + 1024)
    while end > pos and text[end - 1] in " \t":
        end -= 1
    # A full stop, a colon, or a bracket that the value did not open: "pwd=None):". Not on a
    # YAML-style config line ("POSTGRES_PASSWORD: x!V)"), whose value is all the rest of the line.
    keep_closers = config_line and key.group().endswith(":")
    if not quote:
        while end > pos and (text[end - 1] in ".,:;" or (not keep_closers and text[end - 1] in _CLOSERS and
                             text.count(text[end - 1], pos, end) > text.count(_CLOSERS[text[end - 1]], pos, end))):
            end -= 1
    return pos, end, quote


_CLOSERS = {")": "(", "]": "[", "}": "{"}
# A Python expression, not a literal: "getpass.getpass(prompt)", "self.password", "os.environ[...]".
_CODE_EXPRESSION = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:[(\[].*)?|[(\[{].*", re.S)


# Base64 that starts with '/' is a key, not a path: an AWS secret access key is 40 characters
# of base64 and may start with one. A path's parts are words; a key's are long random runs.
_BASE64 = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}", re.A)


def _base64_key(value: str) -> bool:
    return bool(_BASE64.fullmatch(value)) and any(
        len(part) >= 16 and not part.isalpha() and not part.islower() and not part.isupper()
        for part in value.split("/"))


def _is_secret(value: str, key: re.Match, quoted: bool, config_line: bool, code: bool,
               told: bool = False) -> bool:
    name = key.group("name").lower()
    if len(value) < 6 or (_PLACEHOLDER.fullmatch(value) and not _base64_key(value)) \
            or (code and _CODE_EXPRESSION.fullmatch(value)):
        return False
    if " " in value and (name in value.lower() or not (quoted or _LOWER_WORDS.fullmatch(value))):
        return False  # a description ("- password: The password for the login"), not a passphrase
    config = quoted or config_line
    if config and ("pass" in name or "secret" in name or name == "pwd"):
        return True
    if config and _WORDS.fullmatch(value) and not _SNAKE_CASE.fullmatch(value):  # "space-hope-follow-various"
        return True
    # In prose "password:" still says it, but "the password: Friendship" is a story, and so is
    # "and the password: indicate." A lower-case word that a line about a login, a wi-fi or an
    # account gives as the password is one to type: "the wifi password: riverstone (...)".
    if name in _PASSWORD_NAMES and (not _PLAIN_WORD.fullmatch(value) or (told and value.islower())):
        return True
    return _looks_random(value)


def _secret_value(text: str, key: re.Match) -> Span | None:
    """Span of the value assigned to the key, if it is a secret."""
    before = text[key.start() - 1:key.start()]
    if before in ('"', "'") and before not in key.group():
        return None  # the name inside a string that the ':' does not close: prompt="Password: "
    config_line = _config_line(text, key.start())
    start, end, quote = _value_span(text, key, config_line)
    # Code, where an unquoted value is an expression: "passwd = getpass(prompt)", "f(password=pw)".
    code = not quote and key.group().endswith("=") and (key.group()[-2:-1] in (" ", "\t") or _in_call(text, key)
                                                       or text[end:end + 1] == ",")  # an argument on its own line
    if text[start:end] == text[key.start():key.end() - 1].strip("\"' \t"):
        return None  # f(pass_fds=pass_fds)
    told = False
    if not (quote or config_line) and end - start >= 6 and not _WORD_AFTER.match(text, end):
        line_start = max(text.rfind("\n", 0, key.start()) + 1, key.start() - 80)
        line_end = text.find("\n", end, end + 80)
        told = bool(_LOGIN_WORDS.search(text[line_start:line_end if line_end != -1 else end + 80].lower()))
    return (start, end) if _is_secret(text[start:end], key, bool(quote), config_line, code, told) else None


_WORD_AFTER = re.compile(r"[,;]?[ \t]+[^\W\d_]|\w")  # "password: whatever you like" goes on
_LOGIN_WORDS = re.compile(r"wi-?fi|wlan|ssid|network|router|log ?in|sign ?in|account|user|vpn|portal|admin")


def _in_call(text: str, key: re.Match) -> bool:
    """The key is a keyword argument: a '(' before it on its line is still open."""
    line = text[max(0, text.rfind("\n", 0, key.start()) + 1, key.start() - 200):key.start()]
    return line.count("(") > line.count(")")


# Key names are looked for only before a ':' or '=' (found by str.find, which is much
# faster than a regex scan for a character class), and only where a cheap substring
# test on the 40 characters before it finds "pass", "pwd", "secret", "token", "key",
# "auth", "credential" or "sig".


def _key_names(text: str) -> Iterator[re.Match]:
    for op in ":=":
        i = text.find(op)
        while i != -1:
            w = text[max(0, i - 40):i].lower()  # the hint test, spelled out: a generator is 2x slower
            if ("pass" in w or "pwd" in w or "secret" in w or "token" in w or "key" in w or "auth" in w
                    or "credential" in w or "sig" in w) \
                    and text[i + 1:i + 2] not in (":", "=") and text[i + 1:i + 3] != "//" \
                    and text[i - 1:i] not in (":", "=", "<", ">", "!") \
                    and (key := _KEY_NAME.search(text, max(0, i - 64), i + 1)):  # not "::", "==", "://"
                yield key
            i = text.find(op, i + 1)


def _find_assigned_secrets(text: str) -> Iterator[Span]:
    for key in _key_names(text):
        suffix = key.group("suffix")
        if suffix and (suffix[0] not in "_-" or _NOT_SECRET_SUFFIX.search(suffix)):
            continue  # "tokenizer:", "passage:", "secret_name:"
        if span := _secret_value(text, key):
            yield span


def _token_start(text: str, i: int) -> int:
    """Start of the run of ASCII letters and digits that ends at i (the token's prefix)."""
    while i > 0 and text[i - 1].isascii() and text[i - 1].isalnum():
        i -= 1
    return i


def _find_secrets(text: str, runs: list[Span]) -> Iterator[Span]:
    # The `in` tests skip a regex call when its literal is absent: that matters for short texts.
    for literal, pattern in (("_", _TOKEN_AT_UNDERSCORE), ("-", _TOKEN_AT_HYPHEN), (":AA", _TELEGRAM)):
        if literal in text:
            for m in pattern.finditer(text):
                yield _token_start(text, m.start()), m.end()
    for literal, pattern in (("A", _TOKEN_AT_A), ("S", _TOKEN_AT_S), ("hvs.", _TOKEN_AT_H), ("ya29.", _TOKEN_AT_Y),
                             ("eyJ", _JWT),
                             ("-----BEGIN", _PRIVATE_KEY)):
        if literal in text:
            for m in pattern.finditer(text):
                yield m.span()
    if "://" in text:
        yield from _find_url_secrets(text)
    if ":" in text or "=" in text:
        yield from _find_assigned_secrets(text)


# --------------------------------------------------------------------------- scrubber

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
# Every finder takes the text and its digit runs and yields (start, end) spans.
_FINDERS = {"email": _find_emails, "phone": _find_phones, "ipv4": _find_ipv4, "ipv6": _find_ipv6,
            "credit_card": _find_cards, "iban": _find_ibans, "secret": _find_secrets}


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
        runs = _digit_runs(digit_text) if self._needs_runs else []
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
