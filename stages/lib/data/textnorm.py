"""Text normalization: Unicode form, invisible characters, whitespace.

Each step is a pure function on a string, so the clean stage can run them in
worker processes and a user can reason about them one at a time.
"""
from __future__ import annotations

import re
import unicodedata

# Controls that end a line (vertical tab, form feed, next line): a line break, so that the words on
# either side stay apart.
_LINE_BREAK_CONTROLS = re.compile("[\x0b\x0c\x85]")
# The other C0/C1 controls except \t \n \r (CR is tidied into LF below), plus invisible
# characters that only break tokenization: zero-width space, word joiner,
# byte-order mark, soft hyphen, and the noncharacters U+FFFE/U+FFFF (never
# meant for interchange; the SentencePiece adapter uses U+FFFF internally).
# ZWJ/ZWNJ (U+200C/D) stay: Persian, Indic scripts and emoji sequences need them.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b\u2060\ufeff\u00ad\ufffe\uffff]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def fix_mojibake(text: str) -> str:
    """Repair text decoded with the wrong codec ('Ã©' -> 'é'). ftfy does this well; we don't hand-write it.

    Only the encoding repairs: ftfy's other default fixes (straight quotes, ligatures, full-width letters,
    HTML entities, control characters, Unicode normalization) would change correct text, and the last two
    are clean.strip_control's and clean.normalize's to decide.
    """
    import ftfy  # imported here: only needed when clean.fix_mojibake is on

    return ftfy.fix_text(text, uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False,
                         unescape_html=False, remove_control_chars=False, normalization=None)


def normalize_unicode(text: str, form: str) -> str:
    if form == "none" or unicodedata.is_normalized(form, text):
        return text
    return unicodedata.normalize(form, text)


# Speed: a regex that starts with a character class (or a repeated one) is tried at every position,
# 5-10 ms per MB each; `in` finds a literal at memchr speed. So each substitution runs only on a text
# that holds something to substitute, which clean text rarely does; the result is the same.

def strip_invisible(text: str) -> str:
    if "\x0b" in text or "\x0c" in text or "\x85" in text:
        text = _LINE_BREAK_CONTROLS.sub("\n", text)
    return _INVISIBLE.sub("", text)


def tidy_whitespace(text: str) -> str:
    """CRLF/CR to LF, no trailing spaces, at most one blank line in a row, no blank edges."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()
