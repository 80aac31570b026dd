from pathlib import Path

import numpy as np
import pytest

from stages.lib.data.quality import (
    DocStats,
    duplicate_line_fraction,
    duplicate_ngram_fraction,
    quality_check,
    quality_failure,
    top_ngram_fraction,
)
from stages.lib.params import QUALITY_FILTERS, QualityParams

CORPUS = Path("data/raw/shakespeare-milton")


def only(name: str, **thresholds) -> QualityParams:
    return QualityParams(filters=[name], **thresholds)


def excerpt(path: str, start: int = 0, size: int = 20_000) -> str:
    return (CORPUS / path).read_text(encoding="utf-8")[start:start + size]


def unique_words(count: int, length: int = 5) -> list[str]:
    """Distinct alphabetic words of a fixed length: "aaaaa", "aaaab", ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = []
    for i in range(count):
        word, k = "", i
        for _ in range(length):
            word, k = letters[k % 26] + word, k // 26
        words.append(word)
    return words


# --------------------------------------------------------------------------- real prose passes

@pytest.mark.parametrize("path, start", [
    ("shakespeare/hamlet_gut.txt", 0),          # modern edition: speaker names on their own lines
    ("shakespeare/hamlet_gut_f.txt", 20_000),   # First Folio spelling
    ("milton/paradiselost.txt", 20_000),        # blank verse
    ("shakespeare/sonnets_gut.txt", 0),
])
def test_literary_excerpts_pass_all_default_filters(path, start):
    assert quality_failure(excerpt(path, start), QualityParams()) is None


# --------------------------------------------------------------------------- junk is rejected

SENTENCES = [
    "The committee met on Tuesday to discuss the budget for next year.",
    "Several members raised concerns about the cost of the new library.",
    "After a long debate the proposal was sent back for further review.",
    "Residents are invited to comment before the end of the month.",
    "The mayor thanked everyone for their patience during the meeting.",
    "A final decision is expected early in the spring after the survey.",
    "Local businesses have offered to sponsor part of the reading room.",
    "Volunteers will help catalogue the donated books over the summer.",
]


@pytest.mark.parametrize("text, reason", [
    ("Buy now. Limited offer!", "word_count"),
    (" ".join(["a", "b", "c", "d"] * 20), "mean_word_length"),
    (" ".join(["aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ="] * 10 + unique_words(50)), "mean_word_length"),
    (" ".join(f"#{w}" for w in unique_words(60)), "symbol_ratio"),
    (" ".join(SENTENCES) + " Read more... Click... Next... " * 8, "symbol_ratio"),
    (" ".join(str(1000 + 7 * i) for i in range(80)), "alpha_words"),
    ("\n".join(SENTENCES + ["Subscribe to our newsletter for the latest deals."] * 12), "duplicate_lines"),  # 11/20
    ("cheap watches " * 60, "top_ngrams"),
    # A 30-word passage pasted three times into otherwise distinct text.
    (" ".join(SENTENCES[:3]) + "\n" + " ".join(unique_words(30, 6)) + "\n" + " ".join(SENTENCES[3:6]) + "\n"
     + " ".join(unique_words(30, 6)) + " " + SENTENCES[6] + "\n" + " ".join(unique_words(30, 6)), "duplicate_ngrams"),
])
def test_junk_is_rejected_by_the_expected_filter(text, reason):
    assert quality_failure(text, QualityParams()) == reason


def test_first_failing_filter_in_declared_order_wins():
    numbers = " ".join(str(100 + i) for i in range(10))  # too few words and no letters
    assert quality_failure(numbers, QualityParams()) == "word_count"
    assert quality_failure(numbers, QualityParams(filters=["alpha_words", "word_count"])) == "word_count"
    assert quality_failure(numbers, QualityParams(filters=["alpha_words"])) == "alpha_words"
    assert quality_failure(numbers, QualityParams(filters=[])) is None
    assert list(QUALITY_FILTERS)[:2] == ["word_count", "mean_word_length"]


# --------------------------------------------------------------------------- thresholds at their edges

def test_word_count_bounds_are_inclusive():
    p = only("word_count", min_words=5, max_words=7)
    assert quality_failure("one two three four", p) == "word_count"
    assert quality_failure("one two three four five", p) is None
    assert quality_failure("one two three four five six seven", p) is None
    assert quality_failure("one two three four five six seven eight", p) == "word_count"


def test_words_split_on_any_unicode_whitespace():
    text = "alpha\u00a0beta\u3000gamma\x1cdelta\tepsilon\n\nzeta"
    assert DocStats(text).num_words == len(text.split()) == 6
    # Word lengths come from numpy and word ids from Arrow: both must cut at exactly str.isspace().
    spaces = [c for c in map(chr, range(0x3100)) if c.isspace()]
    near_misses = ["\u200b", "\u180e", "\ufeff", "\u2060", "\x00", "\ud800"]
    text = "".join(f"w{c}" for c in spaces + near_misses)
    stats = DocStats(text)
    assert stats.num_words == len(stats.word_ids) == len(text.split()) == len(spaces) + 1


def test_mean_word_length_bounds_are_inclusive():
    p = only("mean_word_length", min_mean_word_length=3.0, max_mean_word_length=10.0)
    assert quality_failure("abc abc", p) is None            # 3.0
    assert quality_failure("ab abc", p) == "mean_word_length"  # 2.5
    assert quality_failure("abcdefghij abcdefghij", p) is None  # 10.0
    assert quality_failure("abcdefghij abcdefghijk", p) == "mean_word_length"  # 10.5
    # Length counts characters, not bytes: five 3-letter words in Greek are still length 3.
    assert quality_failure("αβγ δεζ ηθι κλμ νξο", p) is None
    assert quality_failure("", p) == "mean_word_length"


def test_symbol_ratio_counts_hashes_and_both_ellipses():
    words = unique_words(10)
    p = only("symbol_ratio", max_symbol_word_ratio=0.1)
    assert quality_failure(" ".join(["#" + words[0]] + words[1:]), p) is None  # 1/10
    assert quality_failure(" ".join(["#" + words[0], words[1] + "..."] + words[2:]), p) == "symbol_ratio"
    assert quality_failure(" ".join(["#" + words[0], words[1] + "\u2026"] + words[2:]), p) == "symbol_ratio"
    assert quality_failure(" ".join(["#" + words[0], words[1] + "..."] + words[2:]),
                           only("symbol_ratio", max_symbol_word_ratio=0.2)) is None


def test_alpha_words_edge_and_what_counts_as_alphabetic():
    p = only("alpha_words", min_alpha_word_fraction=0.8)
    assert quality_failure(" ".join(unique_words(8) + ["123", "4.5"]), p) is None  # 8/10
    assert quality_failure(" ".join(unique_words(7) + ["123", "4.5", "--"]), p) == "alpha_words"  # 7/10
    # One letter anywhere makes a word alphabetic, in any script; dashes and digits do not.
    assert DocStats("x1 2y ÄÖ жук 漢字 — 42 3.14").alpha_words == 5


def test_duplicate_line_fraction_edges():
    lines = [f"line number {w}" for w in unique_words(7)]
    three_repeats = lines + lines[:3]  # 10 lines, 3 repeat an earlier one
    p = only("duplicate_lines", max_duplicate_line_fraction=0.3)
    assert duplicate_line_fraction("\n".join(three_repeats)) == pytest.approx(0.3)
    assert quality_failure("\n".join(three_repeats), p) is None
    assert quality_failure("\n".join(three_repeats + [lines[3]]), p) == "duplicate_lines"  # 4/11
    # Blank lines are ignored and surrounding whitespace does not make a line new.
    assert duplicate_line_fraction("a\n\n\n  a  \nb\n\n") == pytest.approx(1 / 3)
    assert duplicate_line_fraction("") == 0.0


def test_top_ngram_fraction_edges():
    filler = unique_words(8, 4)  # 32 characters, every 2-gram distinct
    text = " ".join(["aa", "bb"] + filler[:4] + ["aa", "bb"] + filler[4:])  # "aa bb" twice: 8 of 40 characters
    assert top_ngram_fraction(DocStats(text)) == pytest.approx(0.2)
    assert quality_failure(text, only("top_ngrams", max_top_ngram_fraction=0.2)) is None
    assert quality_failure(text, only("top_ngrams", max_top_ngram_fraction=0.19)) == "top_ngrams"
    # Overlapping occurrences count each word once, so the fraction never exceeds 1.
    assert top_ngram_fraction(DocStats("spam " * 50)) == pytest.approx(1.0)
    # A 2-gram seen once is not a repetition.
    assert top_ngram_fraction(DocStats("just three words")) == 0.0


def test_duplicate_ngram_fraction_edges():
    filler = unique_words(20, 5)
    five = ["the", "quick", "brown", "fox", "jumps"]  # 21 characters
    text = " ".join(five + filler[:10] + five + filler[10:])  # 42 of 142 characters covered
    assert duplicate_ngram_fraction(DocStats(text)) == pytest.approx(42 / 142)
    assert quality_failure(text, only("duplicate_ngrams", max_duplicate_ngram_fraction=42 / 142)) is None
    assert quality_failure(text, only("duplicate_ngrams", max_duplicate_ngram_fraction=0.29)) == "duplicate_ngrams"
    # A repeated 4-gram is not a repeated 5-gram.
    four = " ".join(five[:4] + filler[:10] + five[:4] + filler[10:])
    assert duplicate_ngram_fraction(DocStats(four)) == 0.0
    # A repeated 6-gram is two overlapping repeated 5-grams: 6 words covered per copy, not 10.
    six = five + ["over"]
    text6 = " ".join(six + filler[:10] + six + filler[10:])
    assert duplicate_ngram_fraction(DocStats(text6)) == pytest.approx(50 / 150)


def test_literary_corpus_is_far_from_ngram_thresholds():
    # Real verse repeats phrases, but Gopher's 5-gram and 2-gram measures stay an order of magnitude below.
    stats = DocStats((CORPUS / "shakespeare/comedy_of_errors_gut.txt").read_text(encoding="utf-8"))
    assert duplicate_ngram_fraction(stats) < 0.05 < QualityParams().max_duplicate_ngram_fraction
    assert top_ngram_fraction(stats) < 0.05 < QualityParams().max_top_ngram_fraction


def test_char_classes_agree_with_str_methods_on_every_code_point():
    from stages.lib.data.quality import ALNUM, ALPHA, SPACE, char_classes
    table = char_classes()
    expected = np.fromiter((SPACE * c.isspace() | ALPHA * c.isalpha() | ALNUM * c.isalnum()
                            for c in map(chr, range(0x110000))), np.uint8, 0x110000)
    assert np.array_equal(table, expected)


def test_a_failed_filter_names_its_measured_value_and_the_bound_it_crossed():
    text = " ".join(["the same five words here"] * 30)  # every 5-gram repeats
    name, detail = quality_check(text, only("duplicate_ngrams"))
    value = duplicate_ngram_fraction(DocStats(text))
    assert name == "duplicate_ngrams"
    assert detail == f"duplicate_ngrams {value:.3g} > clean.quality.max_duplicate_ngram_fraction 0.15"
    assert quality_check("one two three", QualityParams())[1] == "word_count 3 < clean.quality.min_words 50"
    assert quality_check(" ".join(unique_words(60)), QualityParams()) is None
