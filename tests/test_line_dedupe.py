from pathlib import Path

import pytest

import stages.lib.data.line_dedupe as line_dedupe
from stages.lib.data.line_dedupe import LineFrequency

CORPUS = Path("data/raw/shakespeare-milton")
LICENSE = [
    "This eBook is for the use of anyone anywhere at no cost and with",
    "almost no restrictions whatsoever.  You may copy it, give it away or",
    "re-use it under the terms of the Project Gutenberg License included",
]
SHORT = "Exeunt."  # in every document, but shorter than min_chars


def fitted(docs: list[str], unit: str = "line", min_chars: int = 40, min_docs: int = 3) -> LineFrequency:
    freq = LineFrequency(unit, min_chars)
    for doc in docs:
        freq.add(doc)
    freq.finalize(min_docs)
    return freq


def test_license_lines_are_cut_and_the_plays_come_back_byte_identical():
    plays = ["hamlet_gut.txt", "macbeth_gut.txt", "tempest_gut.txt", "othello_gut_f.txt"]
    excerpts = [(CORPUS / "shakespeare" / p).read_text(encoding="utf-8")[:8000].rsplit("\n", 1)[0] + "\n"
                for p in plays]
    docs = [e + "\n".join(LICENSE) + "\n" for e in excerpts]
    freq = fitted(docs)
    assert freq.boilerplate_units == len(LICENSE)
    for doc, original in zip(docs, excerpts):
        assert freq.remove_boilerplate(doc) == (original, len(LICENSE))


def test_min_docs_counts_documents_not_occurrences():
    common = "A line that appears in exactly two of the documents here"
    spam = "A line repeated many times but inside one single document"
    docs = [f"{common}\nfirst", f"{common}\nsecond", "\n".join([spam] * 5), "nothing shared at all"]
    freq = fitted(docs, min_docs=3)
    assert freq.boilerplate_units == 0
    assert all(freq.remove_boilerplate(d) == (d, 0) for d in docs)
    freq = fitted(docs, min_docs=2)
    assert freq.boilerplate_units == 1
    assert freq.remove_boilerplate(docs[0]) == ("first", 1)
    assert freq.remove_boilerplate(docs[2]) == (docs[2], 0)


def test_short_lines_are_never_removed():
    docs = [f"{SHORT}\n{LICENSE[0]}\nbody {i}" for i in range(4)]
    freq = fitted(docs)
    assert freq.boilerplate_units == 1
    assert freq.remove_boilerplate(docs[0]) == (f"{SHORT}\nbody 0", 1)
    # At exactly min_chars a line counts; one character less and it is left alone.
    line40, line39 = "x" * 36 + " end", "y" * 35 + " end"
    docs = [f"{line40}\n{line39}\n{i}" for i in range(3)]
    freq = fitted(docs, min_chars=40)
    assert freq.remove_boilerplate(docs[0]) == (f"{line39}\n0", 1)


def test_text_without_boilerplate_is_returned_unchanged():
    freq = fitted([f"{LICENSE[0]}\n{i}" for i in range(3)])
    odd = "  indented line with trailing spaces   \r\n\n\n\tno final newline"
    assert freq.remove_boilerplate(odd) == (odd, 0)
    assert freq.remove_boilerplate("") == ("", 0)


def test_layout_around_removed_lines():
    docs = [f"{LICENSE[1]}\n" for _ in range(3)]
    freq = fitted(docs)
    boiler = LICENSE[1]
    assert freq.remove_boilerplate(f"a\n{boiler}\nb\n") == ("a\nb\n", 1)
    assert freq.remove_boilerplate(f"{boiler}\na") == ("a", 1)          # at the start
    assert freq.remove_boilerplate(f"a\n{boiler}") == ("a", 1)          # at the end, no newline after
    assert freq.remove_boilerplate(f"a\n   {boiler}  \nb") == ("a\nb", 1)  # matched after strip()
    assert freq.remove_boilerplate(f"{boiler}\n{boiler}\n") == ("", 2)


def test_paragraph_unit():
    boiler = "Copyright 2024 Example Corp.\nAll rights reserved, see the terms of use."
    docs = [f"Story {i} begins here.\n\n{boiler}\n\n\nStory {i} ends." for i in range(3)]
    freq = fitted(docs, unit="paragraph")
    assert freq.boilerplate_units == 1
    # The dropped paragraph takes the break after it; the break before it stays.
    assert freq.remove_boilerplate(docs[1]) == ("Story 1 begins here.\n\nStory 1 ends.", 1)
    # The same lines inside a larger paragraph are a different unit and stay.
    other = f"Intro line.\n{boiler}"
    assert freq.remove_boilerplate(other) == (other, 0)
    # Lines of the paragraph are not boilerplate on their own.
    assert fitted(docs, unit="line").boilerplate_units == 1  # only the 42-char second line


def test_hashes_spill_over_storage_chunks(monkeypatch):
    monkeypatch.setattr(line_dedupe, "_CHUNK", 4)
    lines = [f"{LICENSE[0]} variant {i}" for i in range(10)]
    docs = ["\n".join(lines)] * 3 + ["\n".join(lines[:5])]
    freq = fitted(docs, min_docs=4)
    assert freq.boilerplate_units == 5
    assert freq.remove_boilerplate(docs[0]) == ("\n".join(lines[5:]), 5)


def test_calls_out_of_order_are_errors():
    freq = LineFrequency("line", 40)
    with pytest.raises(RuntimeError):
        freq.remove_boilerplate("text")
    freq.finalize(3)
    with pytest.raises(RuntimeError):
        freq.add("text")
    with pytest.raises(ValueError):
        LineFrequency("sentence", 40)


def test_affected_flags_say_which_documents_hold_boilerplate():
    boiler = "This is a licence line that every page of the site repeats."
    texts = [f"{boiler}\nUnique opening line number {i} of a page, long enough." for i in range(3)]
    texts.insert(1, "A page without the licence line, but long enough to count here.")
    freq = LineFrequency("line", 40)
    for text in texts:
        freq.add(text)
    freq.finalize(min_docs=3)
    assert freq.affected.tolist() == [True, False, True, True]
