"""IP addresses: IPv4 dotted quads and IPv6 in full, compressed and IPv4-mapped forms.

Catches "10.0.0.1", "203.0.113.9", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1" and
"::ffff:192.0.2.1"; a host in a URL with credentials ("user:pw@10.0.0.1") too.

Leaves alone: four numbers that name a version, an OID, a section or a pinned package
("version 10.8.34.144", "OID 2.5.4.3", "requests==2.1.7.169", "rv:1.9.5.20"), octets over
255 or with leading zeros, longer dotted sequences ("1.2.3.4.5"), times ("12:30:45"),
verse references ("3:16"), C++ names ("Foo::Bar"), hex words without a digit
("cafe::face") and "::" before a single group ("*::8*"), save the loopback "::1".
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.digits import in_runs
from stages.lib.data.pii.kinds import Span

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


def find_ipv4(text: str, runs: list[Span]) -> Iterator[Span]:
    for m in in_runs(_IPV4, text, runs):
        if not _NOT_IPV4_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            yield m.span()


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
# "::" and a single group is a tag or a scope ("*::8*", "std::4"), except the loopback address "::1".
_TAG = re.compile(r"::(?!1\Z)[0-9A-Fa-f]{1,4}", re.A)
_IPV6_HINT = re.compile(r"::|:[0-9A-Fa-f]{1,4}:", re.A)
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]*", re.A)


def find_ipv6(text: str, runs: list[Span]) -> Iterator[Span]:
    if ":" not in text:
        return
    pos = 0
    while hint := _IPV6_HINT.search(text, pos):
        # An address starts at most 4 characters before its first colon; the window
        # ends one character after the run of address characters, for the look-ahead.
        run_end = _IPV6_CHARS.match(text, hint.start()).end()
        for m in _IPV6.finditer(text, max(pos, hint.start() - 4), run_end + 1):
            if any(c.isdigit() for c in m.group()) and not _TAG.fullmatch(m.group()):
                yield m.span()
        pos = max(run_end, hint.end())

