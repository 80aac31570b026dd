"""The server's decoding: rows of different lengths that join and leave a Batch give the tokens the one-prompt loop
(decoding.generate) gives each prompt alone; the RowsCache step gives the logits of the full forward."""
from __future__ import annotations

import pytest
import torch

from stages.lib.model.decoding import Batch, Row, Sampling, draw, generate
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams

VOCAB = 100
GREEDY = Sampling(temperature=0)


def tiny_model(position: str = "rope") -> GPT:
    torch.manual_seed(0)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=32, position=position), VOCAB).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)  # peaked logits: greedy choices far from ties
    return model


def prompts(*lengths: int) -> list[list[int]]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, VOCAB, (n,), generator=gen).tolist() for n in lengths]


@pytest.mark.parametrize("position", ["rope", "learned"])
def test_a_rows_step_gives_each_rows_full_forward_logits(position):
    model = tiny_model(position)
    seqs = [torch.tensor([p]) for p in prompts(3, 9, 1, 17)]
    with torch.no_grad():
        rows = model.new_rows_cache(6)
        for i, seq in enumerate(seqs):
            one = model.new_cache()
            if seq.size(1) > 1:
                model(seq[:, :-1], cache=one)
            rows.fill(i, one)
        rows.n = len(seqs)
        step, _ = model(torch.cat([s[:, -1:] for s in seqs]), cache=rows)  # [4, 1, V]
        for i, seq in enumerate(seqs):
            assert torch.allclose(step[i, 0], model(seq)[0][0, -1], atol=1e-5)
        rows.move(3, 1)  # the last row takes the place of row 1, which left
        rows.n = 3
        step, _ = model(torch.tensor([[5], [6], [7]]), cache=rows)
        assert torch.allclose(step[1, 0], model(torch.cat([seqs[3], torch.tensor([[6]])], 1))[0][0, -1], atol=1e-5)
        with pytest.raises(ValueError, match="one token for each of its 3 rows"):
            model(torch.tensor([[5], [6]]), cache=rows)


def test_rows_joining_at_different_steps_give_each_prompts_own_greedy_tokens():
    # Prompt lengths from 1 to past block_size (32), 70 new tokens each: every row's window moves several times.
    model = tiny_model()
    batch_prompts = prompts(1, 5, 12, 31, 40, 3)
    expected = [generate(model, torch.tensor([p]), 70, GREEDY).ids[0] for p in batch_prompts]
    batch = Batch(model, max_rows=4)
    rows = [Row(p, 70, GREEDY) for p in batch_prompts]
    waiting, steps, widest = list(rows), 0, 0
    while waiting or batch.rows:
        while waiting and len(batch.rows) < 4 and (steps % 3 == 0 or not batch.rows):  # join every third step
            batch.add(waiting.pop(0))
        widest = max(widest, len(batch.rows))
        in_batch = len(batch.rows)
        assert len(batch.step()) == in_batch  # a token for every row
        steps += 1
    assert widest == 4
    assert [r.new_ids for r in rows] == expected
    assert all(r.finish == "length" for r in rows)


def test_a_seeded_row_draws_the_same_tokens_whatever_shares_the_batch():
    model = tiny_model()
    p = prompts(12, 4, 7)
    sampling = Sampling(temperature=1.0, top_k=20, top_p=0.9)

    def run(*neighbours: Row) -> list[int]:
        batch = Batch(model, max_rows=4)
        seeded = Row(p[0], 40, sampling, torch.Generator().manual_seed(5))
        for row in (*neighbours, seeded):
            batch.add(row)
        while batch.rows:
            batch.step()
        return seeded.new_ids

    alone = run()
    assert run(Row(p[1], 20, GREEDY), Row(p[2], 40, sampling, torch.Generator().manual_seed(5))) == alone
    assert run(Row(p[1], 30, sampling, torch.Generator().manual_seed(9))) == alone
    other_seed = Batch(model, max_rows=1)
    other = Row(p[0], 40, sampling, torch.Generator().manual_seed(6))
    other_seed.add(other)
    while other_seed.rows:
        other_seed.step()
    assert other.new_ids != alone


def test_draw_follows_each_rows_distribution():
    probs = torch.tensor([[0.5, 0.3, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    draws = torch.stack([draw(probs, gens) for _ in range(20_000)])  # [N, 2]
    freq = torch.stack([torch.bincount(draws[:, row], minlength=5) for row in range(2)]).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.015)
    assert freq[0, 3:].sum() == 0  # a token of probability 0 is never drawn


def test_greedy_options_give_the_loops_tokens_in_a_batch():
    # top_k=1 is greedy whatever the temperature; a repetition penalty is applied over the row's own context
    model = tiny_model()
    p = prompts(9, 3)
    penalized = Sampling(temperature=0, repetition_penalty=1.5)
    expected = [generate(model, torch.tensor([p[0]]), 30, GREEDY).ids[0],
                generate(model, torch.tensor([p[1]]), 30, penalized).ids[0]]
    batch = Batch(model, max_rows=2)
    rows = [Row(p[0], 30, Sampling(temperature=1.0, top_k=1)), Row(p[1], 30, penalized)]
    for row in rows:
        batch.add(row)
    while batch.rows:
        batch.step()
    assert [r.new_ids for r in rows] == expected


def test_rows_stop_at_their_stop_token_or_string_and_leave():
    model = tiny_model()
    p = prompts(6)[0]
    free = generate(model, torch.tensor([p]), 30, GREEDY).ids[0]
    stop_token = free[10]
    decode = lambda ids: "".join(chr(65 + i % 26) for i in ids)  # noqa: E731
    stop_string = decode(free[5:7])
    batch = Batch(model, max_rows=4, decode=decode)
    by_token = Row(p, 30, GREEDY, stop_tokens={stop_token})
    by_string = Row(p, 30, GREEDY, stop_strings=[stop_string])
    cancelled = Row(p, 30, GREEDY)
    for row in (by_token, by_string, cancelled):
        batch.add(row)
    batch.step()
    batch.remove(cancelled)
    while batch.rows:
        batch.step()
    assert by_token.finish == "stop_token" and by_token.new_ids == free[:free.index(stop_token) + 1]
    assert by_string.finish == "stop_string" and stop_string in decode(by_string.new_ids)
    assert len(cancelled.new_ids) == 1 and len(by_string.new_ids) < 30


def test_a_full_batch_and_empty_rows_are_refused():
    batch = Batch(tiny_model(), max_rows=1)
    batch.add(Row([1, 2], 5))
    with pytest.raises(ValueError, match="holds 1 rows"):
        batch.add(Row([1], 5))
    with pytest.raises(ValueError, match="at least one token"):
        Batch(tiny_model(), max_rows=1).add(Row([], 5))
