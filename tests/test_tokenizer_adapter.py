"""The tokenizer adapter, for each kind: lossless round trip, end-of-text id, token bytes, fingerprint."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from stages.lib.errors import UserError
from stages.lib.tokens.tokenizer_adapter import HF_FILE, load_tokenizer, train_tokenizer

KINDS = ("bpe", "sentencepiece_bpe", "sentencepiece_unigram")
SPECIAL = ["<|endoftext|>", "<|pad|>"]
VOCAB = 400

# Newlines, runs of spaces, tabs, CRLF, accents, dashes, emoji, and characters never seen in Hamlet.
AWKWARD = [
    "To be, or not to be: that is the question.",
    "  leading and trailing spaces   \n\n\nthree newlines",
    "\ttab\t\tdouble tab\r\nCRLF line",
    "café — naïve façade … “quoted”",
    "emoji 😀🎉 snowman ☃ math 𝔘 CJK 漢字 and Ωμέγα",
    "x",
    "",
]


def train(texts, directory: Path, kind: str, vocab_size: int = VOCAB):
    return train_tokenizer(iter(texts), directory, kind, vocab_size, 2, SPECIAL, True, 1337)


def special_id_in_library(directory: Path, kind: str, token: str) -> int:
    """The id the underlying library itself gives `token`."""
    if kind == "bpe":
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(directory / HF_FILE)).token_to_id(token)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(directory / "spm.model"))
    idx = sp.piece_to_id(token)
    assert sp.id_to_piece(idx) == token and not sp.is_unknown(idx)
    return idx


@pytest.fixture(scope="module", params=KINDS)
def trained(request, tmp_path_factory, sample_text):
    kind = request.param
    directory = tmp_path_factory.mktemp(kind) / "tok"
    tok = train([sample_text], directory, kind)
    return kind, directory, tok


def test_basic_properties(trained):
    kind, directory, tok = trained
    assert tok.kind == kind
    assert 256 + len(SPECIAL) < tok.vocab_size <= VOCAB  # SentencePiece (hard_vocab_limit=False) may stop short
    assert len(tok.fingerprint) == 16


@pytest.mark.parametrize("text", AWKWARD)
def test_round_trip(trained, text):
    _, _, tok = trained
    ids = tok.encode(text)
    assert tok.decode(ids) == text


def test_round_trip_training_text(trained, sample_text):
    _, _, tok = trained
    assert tok.decode(tok.encode(sample_text)) == sample_text


def test_eot_id(trained, sample_text):
    kind, directory, tok = trained
    assert tok.eot_id == special_id_in_library(directory, kind, SPECIAL[0])
    assert tok.eot_id != special_id_in_library(directory, kind, SPECIAL[1])
    for text in [sample_text, *AWKWARD]:
        assert tok.eot_id not in tok.encode(text)


def test_token_bytes(trained, sample_text):
    _, directory, tok = trained
    token_bytes = tok.token_bytes()
    assert token_bytes.shape == (tok.vocab_size,)
    assert np.issubdtype(token_bytes.dtype, np.integer)
    assert token_bytes[tok.eot_id] == 0
    assert (token_bytes >= 0).all()
    for text in [sample_text, *AWKWARD]:
        ids = tok.encode(text)
        assert int(token_bytes[ids].sum()) == len(text.encode("utf-8")), text


def test_token_bytes_match_decoded_single_tokens(trained):
    """Tokens that decode on their own to valid UTF-8 stand for exactly that many bytes."""
    _, _, tok = trained
    token_bytes = tok.token_bytes()
    checked = 0
    for idx in range(tok.vocab_size):
        if idx == tok.eot_id or token_bytes[idx] == 0:
            continue
        piece = tok.decode([idx])
        if "\ufffd" in piece or piece == "":
            continue  # a partial UTF-8 sequence (byte token) does not decode alone
        assert len(piece.encode("utf-8")) == token_bytes[idx], (idx, piece)
        checked += 1
    assert checked > 100


def test_encode_batch_equals_encode(trained, sample_text):
    _, _, tok = trained
    texts = [sample_text[:500], *AWKWARD, sample_text[500:3000]]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


def test_load_tokenizer_gives_the_same_tokenizer(trained, sample_text):
    kind, directory, tok = trained
    again = load_tokenizer(directory)
    assert again.kind == kind
    assert again.fingerprint == tok.fingerprint
    assert again.eot_id == tok.eot_id and again.vocab_size == tok.vocab_size
    assert again.encode(sample_text) == tok.encode(sample_text)


@pytest.mark.parametrize("kind", KINDS)
def test_fingerprint_depends_on_vocab_and_is_deterministic(kind, tmp_path, sample_text):
    directory = tmp_path / "tok"
    first = train([sample_text], directory, kind, vocab_size=400)
    shutil.rmtree(directory)
    same = train([sample_text], directory, kind, vocab_size=400)
    assert same.fingerprint == first.fingerprint
    assert same.encode(sample_text) == first.encode(sample_text)
    shutil.rmtree(directory)
    other = train([sample_text], directory, kind, vocab_size=500)
    assert other.fingerprint != first.fingerprint
    assert other.vocab_size > first.vocab_size


@pytest.mark.parametrize("kind", KINDS)
def test_fingerprint_does_not_depend_on_the_output_directory(kind, tmp_path, sample_text):
    a = train([sample_text], tmp_path / "a", kind)
    b = train([sample_text], tmp_path / "somewhere" / "else", kind)
    assert a.encode(sample_text) == b.encode(sample_text)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "bpe"])
def test_training_does_not_depend_on_the_cpu_count(kind, tmp_path, sample_text, monkeypatch):
    directory = tmp_path / "tok"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = train([sample_text], directory, kind)
    shutil.rmtree(directory)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    two = train([sample_text], directory, kind)
    assert two.fingerprint == one.fingerprint


@pytest.mark.parametrize("kind", KINDS)
def test_literal_special_token_text_is_ordinary_text(kind, tmp_path, sample_text):
    tok = train([sample_text], tmp_path / "tok", kind)
    text = "a web page quoting <|endoftext|> in its text"
    ids = tok.encode(text)
    assert tok.eot_id not in ids
    assert tok.decode(ids) == text
    assert int(tok.token_bytes()[ids].sum()) == len(text.encode("utf-8"))


@pytest.mark.parametrize("in_training_text", [False, True], ids=["unseen", "learned"])
@pytest.mark.parametrize("kind", KINDS)
def test_literal_meta_space_round_trips(kind, in_training_text, tmp_path, sample_text):
    """SentencePiece writes spaces as U+2581 internally: a literal one must still come back as itself, and count
    its 3 bytes, whether training never saw it (byte fallback) or saw it often enough to learn it."""
    corpus = [sample_text] + (["a\u2581b \u2581\u2581 c\u2581\n" * 300] if in_training_text else [])
    tok = train(corpus, tmp_path / "tok", kind)
    text = "SentencePiece writes a space as \u2581 internally, \u2581\u2581 twice"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert int(tok.token_bytes()[ids].sum()) == len(text.encode("utf-8"))


def test_hf_tokenizer_json_loads_in_tokenizers(tmp_path, sample_text):
    from tokenizers import Tokenizer

    tok = train([sample_text], tmp_path / "tok", "bpe")
    plain = Tokenizer.from_file(str(tmp_path / "tok" / HF_FILE))
    for text in [sample_text, *AWKWARD]:
        assert plain.encode(text, add_special_tokens=False).ids == tok.encode(text)
    assert plain.get_vocab_size() == tok.vocab_size


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "bpe"])
def test_too_small_vocab_is_a_user_error(kind, tmp_path, sample_text):
    from stages.lib.params import parse_section

    parse_section("tokenizer", {"kind": kind, "vocab_size": 300})  # accepted by params validation
    with pytest.raises(UserError, match="tokenizer.vocab_size"):
        train([sample_text], tmp_path / "tok", kind, vocab_size=300)


def test_load_tokenizer_of_empty_dir(tmp_path):
    with pytest.raises(UserError, match="meta.json"):
        load_tokenizer(tmp_path)


def test_unknown_kind(tmp_path, sample_text):
    with pytest.raises(UserError) as info:
        train([sample_text], tmp_path / "tok", "wordpiece")
    message = str(info.value)
    assert "wordpiece" in message
    for kind in KINDS:
        assert kind in message
