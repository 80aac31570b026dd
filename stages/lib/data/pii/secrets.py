"""Secrets: tokens with a published prefix, private keys, secrets in URLs, and (from
assigned.py) values assigned to a key-ish name.

Catches API tokens by their vendors' prefixes (GitHub ghp_, Stripe sk_live_, Slack xoxb-,
OpenAI sk-, AWS AKIA, Google AIza and ya29., Hugging Face hf_, ... see the regexes), JWTs,
PEM and PGP private key blocks, the credentials of a URL ("postgres://ann:pw@db/x" loses
"ann:pw", up to the last '@' before the host), whole webhook URLs (Slack, Discord, Teams,
Zapier, ...) and Telegram bot tokens.

Leaves alone: a prefix without a token's length or alphabet after it ("sk-learn", "hf_hub"),
a URL without credentials, and the host of one with them.
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.assigned import find_assigned_secrets
from stages.lib.data.pii.kinds import Span

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


def find_secrets(text: str, runs: list[Span]) -> Iterator[Span]:
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
        yield from find_assigned_secrets(text)


def _token_start(text: str, i: int) -> int:
    """Start of the run of ASCII letters and digits that ends at i (the token's prefix)."""
    while i > 0 and text[i - 1].isascii() and text[i - 1].isalnum():
        i -= 1
    return i


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
