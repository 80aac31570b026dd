"""Normalization, the per-document cleaner, and the clean stage end to end on a small corpus."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from stages import clean as clean_stage
from stages.lib.data import textnorm
from stages.lib.data.cleaning import DocumentCleaner
from stages.lib.data.documents import Document, DocumentWriter, iter_documents
from stages.lib.errors import UserError
from stages.lib.params import CleanParams, QualityParams, parse_section

# --------------------------------------------------------------------------- textnorm


def test_nfc_composes_accents():
    decomposed = "cafe\u0301"
    assert textnorm.normalize_unicode(decomposed, "NFC") == "caf\u00e9"
    assert textnorm.normalize_unicode(decomposed, "none") == decomposed
    assert textnorm.normalize_unicode("\ufb01", "NFKC") == "fi"  # ligature


def test_strip_invisible_keeps_newlines_tabs_and_joiners():
    text = "a\u200bb\ufeffc\u00add\x07e\x00f\tg\nh\u200di\u200cjk\uffffl\ufffem\x84\x86"
    assert textnorm.strip_invisible(text) == "abcdef\tg\nh\u200di\u200cjklm"


def test_strip_invisible_turns_line_ending_controls_into_newlines():
    """Form feed (a page break), vertical tab and NEL separate words: deleting them would join the words."""
    text = "end of page one.\x0cStart of page two\x85next line\x0bcolumn"
    assert textnorm.strip_invisible(text) == "end of page one.\nStart of page two\nnext line\ncolumn"


def test_tidy_whitespace():
    assert textnorm.tidy_whitespace("  a  \r\nb\t\r\n\r\n\r\n\r\nc\rd  \n") == "a\nb\n\nc\nd"


def test_fix_mojibake():
    assert textnorm.fix_mojibake("cafÃ© â€” naÃ¯ve") == "café — naïve"


def test_fix_mojibake_leaves_correct_text_alone():
    """Curly quotes, ligatures, full-width letters, entities and decomposed accents are not mojibake."""
    text = "\u201cHello\u201d, it\u2019s \ufb01ne \uff21\uff22\uff23 &amp; cafe\u0301\x07"
    assert textnorm.fix_mojibake(text) == text
    assert textnorm.fix_mojibake("it\u2019s cafÃ©") == "it\u2019s café"


# --------------------------------------------------------------------------- DocumentCleaner

def params(**overrides) -> CleanParams:
    return dataclasses.replace(CleanParams(min_chars=20, quality=QualityParams(filters=["alpha_words"])),
                               **overrides)


PROSE = "The quality of mercy is not strained; it droppeth as the gentle rain from heaven. " * 3


def test_cleaner_reasons_and_hash():
    cleaner = DocumentCleaner(params(max_chars=1000))
    assert cleaner.clean("a", "s", "too short").reason == "too_short"
    assert cleaner.clean("b", "s", PROSE * 10).reason == "too_long"
    assert cleaner.clean("c", "s", "12 34 56 78 90 " * 5).reason == "quality_alpha_words"
    kept = cleaner.clean("d", "s", PROSE)
    assert kept.reason is None and kept.text == PROSE.strip()
    # Differences that normalization removes do not defeat exact dedupe.
    same = cleaner.clean("e", "s", PROSE.replace(". ", ".  \r\n"))
    other = cleaner.clean("f", "s", PROSE.replace(". ", ".\n"))
    assert same.content_hash == other.content_hash != kept.content_hash
    assert kept.signature is not None and kept.bytes_in == len(PROSE.encode())


def test_cleaner_scrubs_or_drops_pii():
    text = PROSE + " Write to jane.doe@example.com or call (555) 123-4567."
    kept = DocumentCleaner(params()).clean("a", "s", text)
    assert "<EMAIL>" in kept.text and "<PHONE>" in kept.text and "example.com" not in kept.text
    assert kept.pii == {"email": 1, "phone": 1}
    dropped = DocumentCleaner(params(pii=parse_section("clean", {"pii": {"action": "drop"}}).pii))
    assert dropped.clean("a", "s", text).reason == "pii"


# --------------------------------------------------------------------------- the stage

BOILERPLATE = "This file is distributed under the Example Public License v2."


def corpus() -> list[Document]:
    plays = [f"Scene {i}. " + " ".join(f"Word{i}x{j} speaks line {j} of the tale." for j in range(60))
             for i in range(6)]
    docs = [Document(f"play{i}.txt", f"play{i}.txt", f"{BOILERPLATE}\n{text}") for i, text in enumerate(plays)]
    docs.append(Document("copy.txt", "copy.txt", docs[0].text.replace("\n", "\r\n")))  # exact, after tidying
    near = plays[1].replace("line 7 of", "line seven of")
    docs.append(Document("edited.txt", "edited.txt", f"{BOILERPLATE}\n{near}"))  # near duplicate of play1
    docs.append(Document("numbers.txt", "numbers.txt", "1 2 3 4 5 6 7 8 9 10 " * 20))  # junk
    docs.append(Document("mail.txt", "mail.txt", PROSE + " Contact: someone@example.org"))
    return docs


def run_clean(tmp_path: Path, monkeypatch, docs: list[Document], **clean) -> tuple[dict, list[Document]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    with DocumentWriter(clean_stage.IN_DIR) as writer:
        for doc in docs:
            writer.write(doc)
    section = {"min_chars": 20, "quality": {"filters": ["alpha_words"]}, "line_dedupe": {"min_docs": 3}, **clean}
    Path("params.yaml").write_text(yaml.safe_dump({"clean": section}))
    clean_stage.main()
    metrics = json.loads(Path("metrics/clean.json").read_text())
    return metrics, list(iter_documents(clean_stage.OUT_DIR))


def test_clean_stage_removes_each_kind_of_problem(tmp_path, monkeypatch):
    metrics, docs = run_clean(tmp_path, monkeypatch, corpus(), workers=1)
    ids = [d.id for d in docs]
    assert ids == ["play0.txt", "play1.txt", "play2.txt", "play3.txt", "play4.txt", "play5.txt", "mail.txt"]
    assert metrics["documents_in"] == 10 and metrics["documents_out"] == 7
    assert metrics["removed_documents_exact_duplicate"] == 1
    assert metrics["removed_documents_near_duplicate"] == 1
    assert metrics["removed_documents_quality_alpha_words"] == 1
    assert metrics["pii_email"] == 1
    assert metrics["boilerplate_units_removed"] == 6  # the license line, from each kept play
    assert all(BOILERPLATE not in d.text for d in docs)
    assert docs[-1].text.endswith("Contact: <EMAIL>")
    assert metrics["bytes_out"] == sum(len(d.text.encode()) for d in docs)
    report = Path("reports/clean/removed.md").read_text()
    for reason in ("exact_duplicate", "near_duplicate", "quality_alpha_words"):
        assert f"## {reason}" in report
    assert "similar to play1.txt" in report


def test_boilerplate_cut_shows_in_the_console_and_the_report(tmp_path, monkeypatch, capsys):
    # A corpus where nothing but boilerplate is removed: the console once said "removed {}" and the report
    # had an empty table.
    docs = [doc for doc in corpus() if doc.id.startswith("play")]
    metrics, kept = run_clean(tmp_path, monkeypatch, docs, workers=1)
    assert len(kept) == 6 and metrics["boilerplate_units_removed"] == 6
    assert metrics["boilerplate_bytes_removed"] == 6 * (len(BOILERPLATE.encode()) + 1)
    console = capsys.readouterr().out
    assert "removed 0 documents (none); cut 6 boilerplate lines" in console and "from 6 documents" in console
    report = Path("reports/clean/removed.md").read_text()
    assert "boilerplate lines (cut from 6 kept documents) | 6 lines" in report
    assert f"- 6x: {BOILERPLATE}" in report


def test_documents_without_words_are_not_near_duplicates_of_each_other(tmp_path, monkeypatch):
    """With the word filters off, distinct emoji-only or ASCII-art documents are all kept."""
    art = ["\U0001f600\U0001f389\U0001f680 " * 10, "+--+--+\n|  |  |\n+--+--+\n" * 3, "*** --- *** ---\n" * 4]
    metrics, docs = run_clean(tmp_path, monkeypatch, [Document(f"art{i}.txt", "art", t) for i, t in enumerate(art)],
                              workers=1, quality={"filters": []}, line_dedupe={"enabled": False})
    assert metrics["documents_out"] == 3 and len(docs) == 3


def test_clean_output_does_not_depend_on_workers(tmp_path, monkeypatch):
    one = run_clean(tmp_path / "one", monkeypatch, corpus(), workers=1)
    two = run_clean(tmp_path / "two", monkeypatch, corpus(), workers=2)
    assert one == two


def test_clean_removing_everything_is_a_user_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="removed every document"):
        run_clean(tmp_path, monkeypatch, [Document("a", "a", "tiny")], workers=1)
    assert Path("reports/clean/removed.md").exists()  # so the user can see why


def test_the_report_says_why_each_example_went_and_which_key_controls_it(tmp_path, monkeypatch, capsys):
    run_clean(tmp_path, monkeypatch, corpus(), workers=1)
    report = Path("reports/clean/removed.md").read_text()
    assert "- `numbers.txt`: (alpha_words 0 < clean.quality.min_alpha_word_fraction 0.8) 1 2 3" in report
    assert "- `copy.txt`: (same text as play0.txt) " in report  # the exact duplicate names the kept copy
    assert "| quality_alpha_words | 1 | 420 | 2.2% | " in report
    assert "`clean.quality.min_alpha_word_fraction (or drop it from clean.quality.filters)` |" in report
    assert "| exact_duplicate | 1 | " in report and "`clean.exact_dedupe` |" in report
    assert "| email | 1 |" in report  # personal data counted in the report and on the console line
    assert "personal data found: 1 email" in capsys.readouterr().out


def test_a_reason_that_removes_over_a_fifth_of_the_bytes_warns_with_its_key(tmp_path, monkeypatch, capsys):
    junk = [Document(f"n{i}.txt", "n", f"{i} " + "1 2 3 4 5 6 7 8 9 10 " * 20) for i in range(6)]
    run_clean(tmp_path, monkeypatch, corpus()[:3] + junk, workers=1)
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "warning: quality_alpha_words removed " in warnings[0]
    assert "change clean.quality.min_alpha_word_fraction" in warnings[0]
    run_clean(tmp_path / "few", monkeypatch, corpus(), workers=1)  # 420 of 18,860 bytes: no warning
    assert "warning" not in capsys.readouterr().out


def test_a_document_too_short_shows_its_length_against_the_key():
    result = DocumentCleaner(params()).clean("a", "s", "too short")
    assert result.reason == "too_short" and result.text == "(9 characters < clean.min_chars 20) too short"
