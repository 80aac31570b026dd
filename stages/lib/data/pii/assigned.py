"""Secrets assigned to a key-ish name: "api_key=...", "token: ...", "password = '...'".

Catches the value after a name like api_key, client_secret, token, password, pwd,
private_key, credentials or Authorization (with its "Bearer"/"Basic" scheme skipped), in
config files, env files, YAML, URL queries, connection strings, code and prose. The name
stays, the value goes whole: quoted, to its closing quote; on a config line
("DB_PASSWORD=...", "  password: ..."), to the end of the line; else to the next space, or
to a '&' or ';' that starts the next "name=". Punctuation inside a value never ends it
early: a half-replaced password is a leaked one.

Leaves alone: names about a secret rather than the secret (secret_name, token_url,
password_min_length), placeholders and references ("changeme", "${DB_PASSWORD}",
"os.environ[...]", paths), code expressions ("passwd = getpass(prompt)",
"f(password=pw)"), identifiers ("client_secret_post"), descriptions ("- password: The
password for the login"), and prose ("the password: Friendship.", "it might\npass: yet
the scarfs...") unless the value looks generated or a line about a login gives it.
"""
from __future__ import annotations

import re
from typing import Iterator

from stages.lib.data.pii.kinds import Span

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


def find_assigned_secrets(text: str) -> Iterator[Span]:
    for key in _key_names(text):
        suffix = key.group("suffix")
        if suffix and (suffix[0] not in "_-" or _NOT_SECRET_SUFFIX.search(suffix)):
            continue  # "tokenizer:", "passage:", "secret_name:"
        if span := _secret_value(text, key):
            yield span


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


_WORD_AFTER = re.compile(r"[,;]?[ \t]+[^\W\d_]|\w")  # "password: whatever you like" goes on
_LOGIN_WORDS = re.compile(r"wi-?fi|wlan|ssid|network|router|log ?in|sign ?in|account|user|vpn|portal|admin")


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


def _in_call(text: str, key: re.Match) -> bool:
    """The key is a keyword argument: a '(' before it on its line is still open."""
    line = text[max(0, text.rfind("\n", 0, key.start()) + 1, key.start() - 200):key.start()]
    return line.count("(") > line.count(")")


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


_SCHEME = re.compile(r"(?i:bearer|basic|token)[ \t]+(?=\S)", re.A)
_VALUE_END = re.compile(r"""\s|[&;](?=[\w.-]+=)|,(?=\s)|["'<>]""", re.A)  # for an unquoted value
_CONFIG_VALUE_END = re.compile(r"""\s+\#|[&;](?=[\w.-]+=)""", re.A)  # for one that ends its line
_SPACE = re.compile(r"\s")
_CLOSERS = {")": "(", "]": "[", "}": "{"}


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


_PASSWORD_NAMES = ("password", "passwd", "passphrase", "pwd")  # say "this is a password" even in prose
_PLAIN_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+")
# A passphrase: three words or more. Not joined by '_' alone: "client_secret_basic" is an
# identifier (an enum value, a name in code), not a secret.
_WORDS = re.compile(r"[A-Za-z]+(?:[-_. ][A-Za-z]+){2,}")
_SNAKE_CASE = re.compile(r"[A-Za-z]+(?:_[A-Za-z]+)+")
_LOWER_WORDS = re.compile(r"[a-z]+(?: [a-z]+){1,7}")  # an unquoted passphrase: "correct horse battery staple"
_PLACEHOLDER = re.compile(r"""(?ix)
      none|null|nil|true|false|yes|no|empty|required|optional|redacted|hidden|masked|secret|password|passwd
    | ,.* | changeme|change[_-]me|replace[_-]?me|todo|tbd|n/?a|undefined|default|example|dummy|test|foo|bar|mypassword
    | (.)\1{2,} | <[^>]*>? | \$\{.*\}? | (?-i:\$[A-Z_][A-Z0-9_]*) | \{\{.*\}\}? | %\(.*\)s? | %[A-Z_]+%
    | your[_-].* | .*[_-]here
    | (?:os\.environ|process\.env|getenv|env\(|environ\[).* | [a-z]+:// \S* | [~/.]\S*
    | (?-i:[a-z0-9_.-]+(?:/[a-z0-9_.-]+)+)            # a path or a reference: prod/payments/db-credentials
""")
# A Python expression, not a literal: "getpass.getpass(prompt)", "self.password", "os.environ[...]".
_CODE_EXPRESSION = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:[(\[].*)?|[(\[{].*", re.S)


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


# Base64 that starts with '/' is a key, not a path: an AWS secret access key is 40 characters
# of base64 and may start with one. A path's parts are words; a key's are long random runs.
_BASE64 = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}", re.A)


def _base64_key(value: str) -> bool:
    return bool(_BASE64.fullmatch(value)) and any(
        len(part) >= 16 and not part.isalpha() and not part.islower() and not part.isupper()
        for part in value.split("/"))
