"""Bits per byte, the unigram baseline, and the validation text chosen by bytes, checked on small cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stages.lib.data.shards import ShardWriter
from stages.lib.evaluation import scoring
from stages.lib.evaluation.scoring import (
    Documents,
    Score,
    Stream,
    batches,
    score_model,
    score_unigram,
    select_documents,
    unigram_log_probs,
)
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams
from stages.lib.tokens.tokenizer_adapter import train_tokenizer
from stages.lib.training.schedule import lr_at


def test_bpb_by_hand():
    # Token 0 is end-of-text (0 bytes); tokens 1 and 2 stand for 2 and 3 bytes.
    token_bytes = torch.tensor([0, 2, 3])
    score = Score()
    score.add(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1, 2, 0]), token_bytes)
    assert score.loss == 2.0  # every target counts in the token loss
    assert math.isclose(score.ppl, math.exp(2.0))
    assert math.isclose(score.bpb, (1.0 + 2.0) / math.log(2) / 5)  # eot counts in neither sum
    score.add(torch.tensor([0.5]), torch.tensor([2]), token_bytes)
    assert math.isclose(score.bpb, 3.5 / math.log(2) / 8)


def test_unigram_baseline_by_hand():
    log_probs = unigram_log_probs([np.array([1, 1, 1, 2, 0], dtype=np.uint16)], vocab_size=3)
    # counts [1, 3, 1] + 1 each, over 5 + 3
    assert torch.allclose(log_probs.exp(), torch.tensor([2 / 8, 4 / 8, 2 / 8], dtype=torch.float64))
    val = Stream(np.array([1, 2, 1, 0], dtype=np.uint16), end=3, context=0)  # the end-of-text after end: not scored
    score = score_unigram(log_probs, [val], torch.tensor([0, 1, 4]))
    expected_bits = -(math.log2(4 / 8) + math.log2(2 / 8) + math.log2(4 / 8))  # every target: 1, 2, 1
    assert math.isclose(score.bpb, expected_bits / 6)


def test_batches_score_every_token_once_after_an_end_of_text():
    stream = Stream(np.arange(1, 26, dtype=np.uint16), end=25, context=0)
    out = list(batches([stream], block_size=10, batch_size=2))
    assert [tuple(x.shape) for x, _ in out] == [(2, 10), (1, 5)]  # the shorter last window alone
    assert out[0][0][0, 0].item() == 0  # the first token is read after the end-of-text context
    targets = torch.cat([y.reshape(-1) for _, y in out])
    assert targets.tolist() == list(range(1, 26))
    for x, y in out:
        assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one


def test_document_bytes_read_in_chunks_match_a_whole_read(monkeypatch):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=1000).astype(np.uint16)
    ends = np.array([1, 7, 300, 301, 999, 1000])
    token_bytes = rng.integers(0, 5, size=50)
    whole = [int(token_bytes[tokens[a:b]].sum()) for a, b in zip(np.r_[0, ends[:-1]], ends)]
    monkeypatch.setattr(scoring, "CHUNK", 7)  # documents end inside chunks, at their ends, and span several
    assert Documents([tokens], [ends]).document_bytes(token_bytes).tolist() == whole


def test_select_documents_takes_whole_documents_within_the_budget():
    # Two shards: documents of 4, 3 | 5 tokens, one byte per token but end-of-text (id 0).
    shards = [np.array([1, 1, 1, 0, 2, 2, 0]), np.array([3, 3, 3, 3, 0])]
    docs = Documents(shards, [np.array([4, 7]), np.array([5])])
    doc_bytes = docs.document_bytes(np.array([0, 1, 1, 1]))
    assert doc_bytes.tolist() == [3, 2, 4]
    for max_bytes, n, nbytes, ends in [(0, 3, 9, [7, 5]), (5, 2, 5, [7]), (8, 2, 5, [7]), (9, 3, 9, [7, 5]),
                                       (1, 1, 3, [4])]:  # 1: the first document, though it is over the budget
        chosen = select_documents(docs, doc_bytes, eot_id=0, max_bytes=max_bytes)
        assert (chosen.documents, chosen.bytes, [s.end for s in chosen.streams]) == (n, nbytes, ends)


def paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n\n") if p.strip()]


@pytest.fixture(scope="module")
def two_tokenizers(tmp_path_factory, sample_text):
    """The same validation documents packed by a byte-level BPE and by a SentencePiece unigram tokenizer."""
    out = []
    for kind in ("bpe", "sentencepiece_unigram"):
        directory = tmp_path_factory.mktemp(kind)
        tok = train_tokenizer(iter([sample_text]), directory / "tok", kind, 400, 2, ["<|endoftext|>"], True, 1337)
        writer = ShardWriter(directory, "val", tok.vocab_size, shard_tokens=1500)  # several shards
        ids = [doc + [tok.eot_id] for doc in tok.encode_batch(paragraphs(sample_text))]
        writer.write_documents(np.concatenate(ids), np.array([len(doc) for doc in ids]))
        writer.close()
        out.append((tok, Documents.from_split(directory, "val")))
    return out


def test_two_tokenizers_score_exactly_the_same_bytes(two_tokenizers, sample_text):
    docs = paragraphs(sample_text)
    model = GPT(ModelParams(n_layer=1, n_head=2, n_embd=16, block_size=32), vocab_size=400)
    scores = []
    for tok, val in two_tokenizers:
        assert len(val.shards) > 1
        chosen = select_documents(val, val.document_bytes(tok.token_bytes()), tok.eot_id, max_bytes=5000)
        token_bytes = torch.from_numpy(tok.token_bytes())
        score = score_model(model, chosen.streams, 32, 4, token_bytes, torch.device("cpu"), torch.float32)
        text = sum(len(d.encode("utf-8")) for d in docs[:chosen.documents])
        assert score.bytes == chosen.bytes == text  # the divisor is the UTF-8 bytes of exactly the documents scored
        scores.append((chosen.documents, score.bytes, score.targets))
    (docs_a, bytes_a, tokens_a), (docs_b, bytes_b, tokens_b) = scores
    assert docs_a == docs_b and bytes_a == bytes_b <= 5000
    assert tokens_a != tokens_b  # the same text in different tokens


def test_lr_schedules():
    kw = dict(max_steps=100, base_lr=1.0, warmup=10, min_ratio=0.1, decay_fraction=0.2)
    cos = [lr_at(s, schedule="cosine", **kw) for s in range(100)]
    assert math.isclose(cos[0], 0.1) and math.isclose(cos[9], 1.0)
    assert all(a >= b for a, b in zip(cos[10:], cos[11:]))
    assert math.isclose(cos[10], 1.0) and math.isclose(cos[99], 0.1)  # the last step runs at the minimum
    wsd = [lr_at(s, schedule="wsd", **kw) for s in range(100)]
    assert all(v == 1.0 for v in wsd[10:80])
    assert all(a > b for a, b in zip(wsd[79:], wsd[80:])) and math.isclose(wsd[99], 0.1)


def test_wsd_decays_over_short_and_whole_runs():
    kw = dict(base_lr=1.0, min_ratio=0.0)
    short = [lr_at(s, max_steps=10, warmup=0, schedule="wsd", decay_fraction=0.2, **kw) for s in range(10)]
    assert short[7] == 1.0 and short[8:] == [0.5, 0.0]
    assert lr_at(699, max_steps=700, warmup=0, schedule="wsd", decay_fraction=0.001, **kw) == 0.0
    # Decay over the whole run starts after warmup, from the full rate: no drop when warmup ends.
    whole = [lr_at(s, max_steps=10, warmup=5, schedule="wsd", decay_fraction=1.0, **kw) for s in range(10)]
    assert whole[4] == 1.0 and whole[5] == 0.8 and whole[9] == 0.0
