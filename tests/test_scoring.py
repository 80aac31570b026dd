"""Bits per byte and the unigram baseline, checked by hand on small cases."""
from __future__ import annotations

import math

import numpy as np
import torch

from stages.lib.training.batches import TokenWindows
from stages.lib.evaluation.scoring import Score, score_unigram, unigram_log_probs, window_indices
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
    train = TokenWindows([np.array([1, 1, 1, 2, 0], dtype=np.uint16)], block_size=2, name="train")
    log_probs = unigram_log_probs(train, vocab_size=3)
    # counts [1, 3, 1] + 1 each, over 5 + 3
    assert torch.allclose(log_probs.exp(), torch.tensor([2 / 8, 4 / 8, 2 / 8], dtype=torch.float64))
    val = TokenWindows([np.array([1, 2, 1], dtype=np.uint16)], block_size=2, name="val")
    score = score_unigram(log_probs, val, window_indices(val, 0), torch.tensor([0, 1, 4]))
    expected_bits = -(math.log2(2 / 8) + math.log2(4 / 8))  # targets 2 then 1
    assert math.isclose(score.bpb, expected_bits / 5)


def test_window_indices_cover_max_tokens():
    data = TokenWindows([np.arange(101, dtype=np.uint16)], block_size=10, name="val")
    assert window_indices(data, 0) == list(range(10))
    assert window_indices(data, 25) == [0, 1, 2]


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
