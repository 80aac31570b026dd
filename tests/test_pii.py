"""PII scrubber: precision and recall on a corpus of positives and look-alikes, and scrub() behaviour."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from stages.lib.params import PII_KINDS
from stages.lib.data.pii import PLACEHOLDERS, PiiScrubber, _iban_checksum_ok, _luhn_ok

CASES_FILE = Path(__file__).parent / "data" / "pii" / "cases.txt"
MARK = re.compile(r"\[\[(.*?)\]\]", re.S)


def load_cases() -> list[tuple[str, str, list[tuple[int, int]]]]:
    """(kind, plain text, expected spans) per case; negatives have no spans."""
    cases = []
    for number, line in enumerate(CASES_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, label, marked = line.split(" ", 2)
        assert kind in PLACEHOLDERS and label in "+-", f"{CASES_FILE.name}:{number}: bad case {line!r}"
        marked = marked.replace("\\n", "\n")
        text, spans, pos = "", [], 0
        for m in MARK.finditer(marked):
            text += marked[pos:m.start()]
            spans.append((len(text), len(text) + len(m.group(1))))
            text += m.group(1)
            pos = m.end()
        text += marked[pos:]
        assert bool(spans) == (label == "+"), f"{CASES_FILE.name}:{number}: '+' needs [[marks]], '-' has none"
        cases.append((kind, text, spans))
    return cases


CASES = load_cases()


def test_placeholders_cover_the_param_kinds():
    assert set(PLACEHOLDERS) == set(PII_KINDS)


def test_corpus_has_enough_cases_per_kind():
    for kind in PLACEHOLDERS:
        positives = sum(len(spans) for k, _, spans in CASES if k == kind)
        negatives = sum(1 for k, _, spans in CASES if k == kind and not spans)
        assert positives >= 8 and negatives >= 8, f"{kind}: {positives} positives, {negatives} negatives"


def _evaluate(scrubber_for_kind) -> list[str]:
    """Compare found and expected hits over the corpus; return one message per kind below 1.0."""
    failures = []
    for kind in PLACEHOLDERS:
        tp, misses, false_hits = 0, [], []
        for case_kind, text, spans in CASES:
            scrubber = scrubber_for_kind(case_kind)
            expected = {(case_kind, s, e) for s, e in spans}
            found = set(scrubber.find(text))
            tp += len({h for h in expected & found if h[0] == kind})
            misses += [f"{text[s:e]!r} in {text!r}" for k, s, e in expected - found if k == kind]
            false_hits += [f"{text[s:e]!r} in {text!r}" for k, s, e in found - expected if k == kind]
        precision = tp / (tp + len(false_hits)) if tp + len(false_hits) else 1.0
        recall = tp / (tp + len(misses)) if tp + len(misses) else 1.0
        if precision < 1.0 or recall < 1.0:
            failures.append(f"{kind}: precision {precision:.2f}, recall {recall:.2f}\n"
                            + "".join(f"  missed {m}\n" for m in misses)
                            + "".join(f"  false hit {f}\n" for f in false_hits))
    return failures


def test_precision_and_recall_with_all_kinds():
    everything = PiiScrubber(list(PII_KINDS))
    failures = _evaluate(lambda kind: everything)
    assert not failures, "\n" + "\n".join(failures)


def test_precision_and_recall_one_kind_at_a_time():
    scrubbers = {kind: PiiScrubber([kind]) for kind in PII_KINDS}
    failures = _evaluate(lambda kind: scrubbers[kind])
    assert not failures, "\n" + "\n".join(failures)


def test_scrub_replaces_with_placeholder_and_keeps_surrounding_text():
    scrubber = PiiScrubber(list(PII_KINDS))
    for kind, text, spans in CASES:
        expected, pos = "", 0
        for start, end in spans:
            expected += text[pos:start] + PLACEHOLDERS[kind]
            pos = end
        expected += text[pos:]
        scrubbed, counts = scrubber.scrub(text)
        assert scrubbed == expected
        assert counts == ({kind: len(spans)} if spans else {})


def test_scrub_counts_several_kinds():
    text = ("Mail ann@example.org or bob@example.net, call (555) 123-4567, "
            "host 10.0.0.1 or 2001:db8::1, card 4111-1111-1111-1111, "
            "IBAN GB82 WEST 1234 5698 7654 32, token=abc123def456ghi7.")
    scrubbed, counts = PiiScrubber(list(PII_KINDS)).scrub(text)
    assert scrubbed == ("Mail <EMAIL> or <EMAIL>, call <PHONE>, host <IPV4> or <IPV6>, card <CREDIT_CARD>, "
                        "IBAN <IBAN>, token=<SECRET>.")
    assert counts == {"email": 2, "phone": 1, "ipv4": 1, "ipv6": 1, "credit_card": 1, "iban": 1, "secret": 1}


def test_find_is_sorted_and_non_overlapping():
    # ::ffff:192.0.2.1 holds an IPv4 address, the IBAN holds card-like groups, the secret an e-mail.
    text = "x ::ffff:192.0.2.1 y ES91 2100 0418 4502 0005 1332 z password=s3cret@example.com 10.1.1.1"
    hits = PiiScrubber(list(PII_KINDS)).find(text)
    assert [h[0] for h in hits] == ["ipv6", "iban", "secret", "ipv4"]
    assert all(a[2] <= b[1] for a, b in zip(hits, hits[1:]))


def test_kinds_not_enabled_are_left_alone():
    text = "Write to ann@example.org or call (555) 123-4567 from 10.0.0.1."
    scrubbed, counts = PiiScrubber(["email"]).scrub(text)
    assert scrubbed == "Write to <EMAIL> or call (555) 123-4567 from 10.0.0.1."
    assert counts == {"email": 1}
    scrubbed, counts = PiiScrubber(["phone", "ipv4"]).scrub(text)
    assert scrubbed == "Write to ann@example.org or call <PHONE> from <IPV4>."
    assert counts == {"phone": 1, "ipv4": 1}


def test_no_kinds_changes_nothing():
    scrubber = PiiScrubber([])
    for _, text, _ in CASES:
        assert scrubber.scrub(text) == (text, {})
        assert scrubber.find(text) == []


def test_empty_and_plain_text():
    scrubber = PiiScrubber(list(PII_KINDS))
    assert scrubber.scrub("") == ("", {})
    verse = "Of Man's first disobedience, and the fruit\nOf that forbidden tree (Book 1, lines 1-26, 1667)."
    assert scrubber.scrub(verse) == (verse, {})


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown PII kinds"):
        PiiScrubber(["email", "ssn"])


def test_scrubber_survives_pickling():
    scrubber = PiiScrubber(["email", "secret", "iban"])
    clone = pickle.loads(pickle.dumps(scrubber))
    assert clone.kinds == scrubber.kinds
    for _, text, _ in CASES:
        assert clone.scrub(text) == scrubber.scrub(text)


def test_checksums():
    assert _luhn_ok("4111111111111111") and _luhn_ok("378282246310005")
    assert not _luhn_ok("4111111111111112")
    assert _iban_checksum_ok("GB82WEST12345698765432") and _iban_checksum_ok("FR1420041010050500013M02606")
    assert not _iban_checksum_ok("GB82WEST12345698765433")
