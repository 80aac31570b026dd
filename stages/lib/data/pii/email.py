"""E-mail addresses: plain, bounce addresses whole, and the forms written to fool harvesters.

Catches "ann@example.org", VERP/BATV/SRS bounce addresses with their tags
("bounce-ann=example.com@lists.example.net"), "ann(at)example.de", "ann [at] example
[dot] com", "ann.lee at example dot org", and a real '@' with a spelled-out dot after it
("jo@firma dot de"). A key before an address stays: "email=ann@example.com" loses only
the address.

Leaves alone: a domain without a TLD ("user@localhost"), retina image names
("logo@2x.png"), a stray '@' ("Th' @ the gate"), and " at " in prose before a domain
("look at example.com", "arrived at Amazon.com") unless the dot is spelled out or the
name before it is no English word ("ann.lee", "ann99").
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.kinds import Span

# The local part is matched backwards from each '@' (a pattern that starts with
# the local part would be tried at every letter of the text). A name, '@', dotted
# labels, and a TLD of letters: "Th' @ the gate", "@@@" and "user@localhost" fail.
# '=' and '/' are allowed for bounce addresses (VERP "bounce-ann=example.com@lists...",
# BATV "prvs=1a2b=ann@...", SRS "SRS0=aO/p=ON=example.org=ann@..."), which must go whole.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+=/-]{1,64}\Z", re.A)  # searched with endpos = the '@'
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b", re.A)
_RETINA_IMAGE = re.compile(r"\d+(?:\.\d+)?x\.", re.A)  # "logo@2x.png" is a file name


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


def find_emails(text: str, runs: list[Span]) -> Iterator[Span]:
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

