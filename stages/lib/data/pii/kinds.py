"""The kinds of personal data and secrets the scrubber knows, and the placeholder of each.

Imported by the params module to check `clean.pii.kinds`, so it imports nothing: no
phonenumbers, no regexes.
"""
from __future__ import annotations

PII_KINDS = ("email", "phone", "ipv4", "ipv6", "credit_card", "iban", "secret")

PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "ipv4": "<IPV4>",
    "ipv6": "<IPV6>",
    "credit_card": "<CREDIT_CARD>",
    "iban": "<IBAN>",
    "secret": "<SECRET>",
}

# What every detector yields: the start and end of a hit in the text it was given.
Span = tuple[int, int]
