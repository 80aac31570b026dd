"""The decoding loop: the KV cache matches full recomputation, and every sampling option does what it says."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from stages.lib.errors import UserError
from stages.lib.model.decoding import (
    KEEP_FRACTION,
    Sampling,
    apply_repetition_penalty,
    cut_at_stop,
    generate,
    stream,
    top_k_filter,
    top_p_filter,
    window_start,
)
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams

VOCAB = 100
GREEDY = Sampling(temperature=0)


def tiny_model(**overrides) -> GPT:
    """A tiny fp32 model with large random weights, so its predictions are peaked and vary with context."""
    cfg = dataclasses.replace(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=16), **overrides)
    torch.manual_seed(0)
    model = GPT(cfg, VOCAB).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model


def prompt(length: int = 5, batch: int = 1, seed: int = 0) -> torch.Tensor:
    row = torch.randint(0, VOCAB, (1, length), generator=torch.Generator().manual_seed(seed))
    return row.repeat(batch, 1)


def letters(ids: list[int]) -> str:
    """A decode function for tests: one letter per token."""
    return "".join(chr(ord("a") + i % 26) for i in ids)


# --------------------------------------------------------------------------- the cache

@pytest.mark.parametrize("qk_norm", [True, False])
@pytest.mark.parametrize("position", ["rope", "learned"])
@pytest.mark.parametrize("prompt_length", [5, 20])  # 20: the prompt alone is longer than block_size (16)
def test_cached_greedy_equals_uncached_past_block_size(position, qk_norm, prompt_length):
    model = tiny_model(position=position, qk_norm=qk_norm)
    x = prompt(prompt_length, batch=2)
    x[1, -1] = 7  # two different rows
    cached = generate(model, x, 60, GREEDY)  # 60 new tokens: the window is cut and re-prefilled several times
    uncached = generate(model, x, 60, GREEDY, use_cache=False)
    assert cached.ids == uncached.ids
    assert all(len(row) == 60 for row in cached.ids) and cached.ids[0] != cached.ids[1]


def test_the_context_never_exceeds_block_size_and_restarts_at_three_quarters():
    block, keep = 16, int(16 * KEEP_FRACTION)
    start, moves = 0, 0
    for length in range(1, 60):
        new = window_start(length, start, block)
        if new != start:  # cut only when the window would exceed block_size, to its last `keep` tokens
            assert length - start == block + 1 and length - new == keep
            moves += 1
        start = new
        assert length - start <= block and (length <= block or length - start >= keep)
    assert moves == (59 - block) // (block + 1 - keep) + 1  # one re-prefill every block + 1 - keep tokens


def test_cached_sampling_with_a_seed_equals_uncached():
    model = tiny_model()
    options = Sampling(temperature=1.0, top_k=20, top_p=0.9, repetition_penalty=1.3)
    a = generate(model, prompt(batch=3), 40, options, generator=torch.Generator().manual_seed(1))
    b = generate(model, prompt(batch=3), 40, options, generator=torch.Generator().manual_seed(1), use_cache=False)
    assert a.ids == b.ids


# --------------------------------------------------------------------------- choosing a token

def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]])  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15 (id 0), 0.05 (id 2)
    logits = probs.log()
    kept = lambda p: set(torch.isfinite(top_p_filter(logits, p))[0].nonzero().flatten().tolist())  # noqa: E731
    assert kept(0.3) == {1}  # the most likely token alone reaches p
    assert kept(0.79) == {1, 3}
    assert kept(0.81) == {1, 3, 0}
    assert kept(0.96) == {0, 1, 2, 3}
    assert kept(1.0) == {0, 1, 2, 3}
    # Kept tokens keep their logits: the filtered distribution is the renormalised nucleus.
    assert torch.allclose(top_p_filter(logits, 0.79).softmax(-1), torch.tensor([[0, 0.5 / 0.8, 0, 0.3 / 0.8]]))


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert torch.isfinite(top_k_filter(logits, 2)).tolist() == [[False, True, True, False]]
    assert torch.isfinite(top_k_filter(logits, 10)).all()


def test_repetition_penalty_lowers_the_probability_of_tokens_already_seen():
    logits = torch.tensor([[2.0, -1.0, 0.5, 1.0]])
    context = torch.tensor([[0, 1, 1]])  # tokens 0 and 1 seen (1 twice: penalised once, as in transformers)
    out = apply_repetition_penalty(logits, context, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 1.0]]  # positive divided, negative multiplied, unseen unchanged
    before, after = logits.softmax(-1)[0], out.softmax(-1)[0]
    assert after[0] < before[0] and after[1] < before[1] and after[2] > before[2] and after[3] > before[3]


def test_a_strong_repetition_penalty_stops_greedy_repeats():
    model = tiny_model()
    x = prompt(4)
    plain = x[0].tolist() + generate(model, x, 20, GREEDY).ids[0]
    assert len(set(plain)) < len(plain)  # this model repeats itself when greedy
    penalised = x[0].tolist() + generate(model, x, 20, Sampling(temperature=0, repetition_penalty=1e6)).ids[0]
    assert len(set(penalised)) == len(penalised)


def test_top_k_1_is_greedy():
    model = tiny_model()
    greedy = generate(model, prompt(), 30, GREEDY)
    top1 = generate(model, prompt(), 30, Sampling(temperature=1.0, top_k=1), generator=torch.Generator().manual_seed(3))
    assert top1.ids == greedy.ids


def test_bad_sampling_values_are_user_errors_named_as_the_user_spelled_them():
    flag = lambda field: "--" + field.replace("_", "-")  # noqa: E731
    for bad, message in [(Sampling(temperature=-1), "--temperature=-1"), (Sampling(top_k=-2), "--top-k=-2"),
                         (Sampling(top_p=0), "--top-p=0"), (Sampling(top_p=1.5), "--top-p=1.5"),
                         (Sampling(repetition_penalty=0), "--repetition-penalty=0"),
                         (Sampling(temperature=float("nan")), "--temperature=nan")]:
        with pytest.raises(UserError, match=message):
            bad.validate(flag)
    Sampling(temperature=0, top_k=0, top_p=1.0, repetition_penalty=1.0).validate(flag)


# --------------------------------------------------------------------------- stopping, seeds, batches, streams

def test_stop_strings_cut_the_text_before_them_and_end_the_row():
    model = tiny_model()
    full = generate(model, prompt(), 40, GREEDY, decode=letters)
    text = full.texts[0]
    stop = text[6:8]
    first = text.find(stop)
    out = generate(model, prompt(), 40, GREEDY, stop_strings=["zzzz", stop], decode=letters)
    assert out.texts[0] == text[:first] and out.finish == ["stop_string"]
    assert out.ids[0] == full.ids[0][:first + len(stop)]  # ends with the token that completed the stop string
    assert cut_at_stop("abcabc", ["ca", "b"]) == ("a", True) and cut_at_stop("abc", ["x"]) == ("abc", False)


def test_the_stop_token_ends_the_row_and_is_left_out_of_the_text():
    model = tiny_model()
    full = generate(model, prompt(), 40, GREEDY).ids[0]
    stop = full[5]
    out = generate(model, prompt(), 40, GREEDY, stop_token=stop, decode=letters)
    assert out.ids[0] == full[:full.index(stop) + 1] and out.finish == ["stop_token"]
    assert out.texts[0] == letters(full[:full.index(stop)])


def test_a_seed_reproduces_and_another_seed_differs():
    model = tiny_model()
    options = Sampling(temperature=1.0)
    run = lambda seed: generate(model, prompt(), 30, options, generator=torch.Generator().manual_seed(seed)).ids  # noqa: E731
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_rows_of_a_batch_are_independent_and_finished_rows_stop_while_others_go_on():
    model = tiny_model()
    sampled = generate(model, prompt(batch=4), 30, Sampling(temperature=1.0),
                       generator=torch.Generator().manual_seed(0)).ids
    assert len({tuple(row) for row in sampled}) == 4  # one prompt, four different samples

    a, b = prompt(5, seed=1), prompt(5, seed=2)
    solo_a, solo_b = generate(model, a, 30, GREEDY).ids[0], generate(model, b, 30, GREEDY).ids[0]
    stop = next(t for t in solo_a[2:] if t not in solo_b)
    out = generate(model, torch.cat((a, b)), 30, GREEDY, stop_token=stop)
    assert out.ids[0] == solo_a[:solo_a.index(stop) + 1] and out.finish[0] == "stop_token"
    assert out.ids[1] == solo_b and out.finish[1] == "length"


def test_streaming_yields_the_final_ids_as_they_come():
    model = tiny_model()
    x = torch.cat((prompt(5, seed=1), prompt(5, seed=2)))
    stop = generate(model, x[:1], 30, GREEDY).ids[0][3]
    options = dict(stop_token=stop, generator=torch.Generator().manual_seed(0))
    steps = list(stream(model, x, 30, Sampling(temperature=0.5), **options))
    options["generator"] = torch.Generator().manual_seed(0)
    seen: list[list[int | None]] = []
    final = generate(model, x, 30, Sampling(temperature=0.5), on_step=seen.append, **options)
    assert steps == seen
    for row in range(2):
        streamed = [step[row] for step in steps]
        assert [t for t in streamed if t is not None] == final.ids[row]
        # Once a row has finished it yields None, never a token again.
        assert all(t is None for t in streamed[len(final.ids[row]):])


def test_zero_new_tokens_and_bad_prompts():
    model = tiny_model()
    assert generate(model, prompt(), 0, GREEDY, decode=letters).texts == [""]
    with pytest.raises(ValueError, match="decode"):
        generate(model, prompt(), 5, GREEDY, stop_strings=["a"])
    with pytest.raises(ValueError, match="T >= 1"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 5, GREEDY)
