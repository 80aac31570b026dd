"""Benchmark tasks: the file format, lm-eval's pair encoding and truncation, and the metrics against
a brute-force per-item computation on a tiny random model."""
from __future__ import annotations

import json
import math
import random
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stages.lib.errors import UserError
from stages.lib.evaluation.task_format import Cloze, MultipleChoice, Task, load_task
from stages.lib.evaluation.tasks import (
    Loglik,
    cloze_metrics,
    encode_pair,
    loglikelihoods,
    model_input,
    multiple_choice_metrics,
    score_task,
)
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams

EOT = 0


def char_encode(text: str) -> list[int]:
    """One token per character (ids 1..127); id 0 is end-of-text."""
    return [1 + ord(c) % 127 for c in text]


_WORD = re.compile(r" ?[^\s]+|\s+")


def word_encode(text: str) -> list[int]:
    """A word-level tokenizer that joins a space to the word after it, as byte-level BPE does: the
    boundary between context and continuation changes the tokens."""
    return [1 + hash(piece) % 120 for piece in _WORD.findall(text)]


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    cfg = ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=48)
    gpt = GPT(cfg, vocab_size=128)
    for p in gpt.parameters():  # random weights everywhere (output projections start at zero)
        torch.nn.init.normal_(p, std=0.3)
    return gpt.eval()


def write_lines(path, lines: list[str]):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- format

def test_both_formats_load_and_blank_lines_are_skipped(tmp_path):
    mc = write_lines(tmp_path / "quiz.jsonl", [json.dumps({"context": "a", "choices": [" b", " c"], "answer": 1}), "",
                                                json.dumps({"context": "d", "choices": ["e", "f", "g"], "answer": 0})])
    task = load_task(mc)
    assert (task.name, task.kind, len(task.items)) == ("quiz", "multiple_choice", 2)
    assert task.items[1] == MultipleChoice("d", ["e", "f", "g"], 0)
    cloze = write_lines(tmp_path / "lambada.jsonl", [json.dumps({"context": "x y", "target": " z"})])
    assert load_task(cloze) == Task("lambada", "cloze", [Cloze("x y", " z")])


@pytest.mark.parametrize("record, phrase", [
    ('{"context": "a", "choices": [" b", " c"], "answer": 1', "not valid JSON"),
    ('["a", "b"]', 'needs "context"'),
    ('{"context": 3, "target": "b"}', 'needs "context"'),
    ('{"context": "a", "choices": [" b"], "answer": 0}', "at least 2 non-empty strings"),
    ('{"context": "a", "choices": [" b", ""], "answer": 0}', "at least 2 non-empty strings"),
    ('{"context": "a", "choices": " b c", "answer": 0}', "at least 2 non-empty strings"),
    ('{"context": "a", "choices": [" b", " c"], "answer": 2}', '"answer" must be the index'),
    ('{"context": "a", "choices": [" b", " c"], "answer": true}', '"answer" must be the index'),
    ('{"context": "a", "choices": [" b", " c"]}', '"answer" must be the index'),
    ('{"context": "a", "target": ""}', 'non-empty "target"'),
    ('{"context": "a"}', 'non-empty "target"'),
    ('{"context": "a", "target": " b"}', "a cloze record in a multiple_choice task"),
])
def test_a_bad_record_is_named_by_file_and_line(tmp_path, record, phrase):
    good = json.dumps({"context": "a", "choices": [" b", " c"], "answer": 0})
    path = write_lines(tmp_path / "t.jsonl", [good, good, record])
    with pytest.raises(UserError, match=re.escape(phrase)) as info:
        load_task(path)
    assert f"{path}:3" in str(info.value)


def test_missing_and_empty_task_files_are_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_task(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="holds no records"):
        load_task(tmp_path / "empty.jsonl")


# --------------------------------------------------------------------------- encoding and truncation

def test_trailing_whitespace_moves_to_the_continuation():
    context_enc, continuation_enc = encode_pair(word_encode, "The cat sat on the ", "mat", EOT)
    assert context_enc == word_encode("The cat sat on the")
    assert continuation_enc == word_encode(" mat")  # one token " mat", as in running text
    # Without the move, the context would end in a lone-space token the running text never has.
    assert word_encode("The cat sat on the ")[-1] not in word_encode("The cat sat on the mat")
    # Several whitespace characters move together.
    assert encode_pair(char_encode, "ab \n", "c", EOT) == (char_encode("ab"), char_encode(" \nc"))


def test_pair_encoding_matches_lm_eval():
    lm_model = pytest.importorskip("lm_eval.api.model")
    fake = types.SimpleNamespace(backend="causal", tok_encode=word_encode)
    rng = random.Random(0)
    words = ["the", "cat", " ", "\n", "sat", ",", "  "]
    for _ in range(200):
        context = "".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        continuation = "".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        if not context:
            continue
        assert encode_pair(word_encode, context, continuation, EOT) == \
            lm_model.TemplateLM._encode_pair(fake, context, continuation)


def test_an_empty_context_becomes_end_of_text():
    assert encode_pair(char_encode, "", "ab", EOT) == ([EOT], char_encode("ab"))


def test_model_input_keeps_the_last_max_length_tokens():
    assert model_input([1, 2, 3], [4, 5], max_length=10) == [1, 2, 3, 4]
    assert model_input([1, 2, 3, 4, 5, 6], [7, 8], max_length=4) == [4, 5, 6, 7]  # left-truncated


def brute_force(model: GPT, context_enc: list[int], continuation_enc: list[int]) -> tuple[float, bool]:
    """One item alone, no batching: the log-probabilities of the continuation given the last tokens."""
    tokens = torch.tensor(context_enc + continuation_enc)[-(model.cfg.block_size + 1):]
    with torch.no_grad():
        logits, _ = model(tokens[None, :-1])
    logprobs = F.log_softmax(logits[0].float(), dim=-1)
    n = len(continuation_enc)
    targets = tokens[-n:]
    rows = logprobs[-n:]
    total = sum(rows[i, targets[i]].item() for i in range(n))
    greedy = all(rows[i].argmax().item() == targets[i].item() for i in range(n))
    return total, greedy


def test_loglikelihoods_equal_one_item_at_a_time_including_truncated_ones(model):
    rng = random.Random(1)
    pairs = [([rng.randrange(1, 128) for _ in range(rng.randint(1, 80))],  # up to 80 > block_size 48
              [rng.randrange(1, 128) for _ in range(rng.randint(1, 6))]) for _ in range(40)]
    scores = loglikelihoods(model, pairs, model.cfg.block_size, batch_tokens=100, device=torch.device("cpu"))
    for pair, score in zip(pairs, scores):
        expected, greedy = brute_force(model, *pair)
        assert math.isclose(score.logprob, expected, rel_tol=1e-4, abs_tol=1e-4)
        assert score.is_greedy == greedy


# --------------------------------------------------------------------------- metrics

def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("abcde ") for _ in range(n))


def test_multiple_choice_acc_and_acc_norm_against_brute_force(model):
    rng = random.Random(2)
    items = []
    for _ in range(30):
        choices = [" " + random_text(rng, rng.randint(1, 9)) for _ in range(rng.randint(2, 5))]
        items.append(MultipleChoice(random_text(rng, rng.randint(3, 30)) + rng.choice(["", " "]), choices,
                                    rng.randrange(len(choices))))
    task = Task("quiz", "multiple_choice", items)
    got = score_task(model, char_encode, task, EOT, model.cfg.block_size, 64, torch.device("cpu"))

    acc = acc_norm = 0
    for item in items:
        lls = [brute_force(model, *encode_pair(char_encode, item.context, c, EOT))[0] for c in item.choices]
        acc += int(np.argmax(lls) == item.answer)
        acc_norm += int(np.argmax([ll / len(c) for ll, c in zip(lls, item.choices)]) == item.answer)
    assert got["acc"] == acc / len(items) and got["acc_norm"] == acc_norm / len(items)
    assert got["n"] == 30
    assert math.isclose(got["chance"], np.mean([1 / len(item.choices) for item in items]))


def test_ties_go_to_the_first_choice_and_acc_norm_divides_by_characters():
    # Item 1: a tie, in raw and normalised scores: numpy's argmax takes the first.
    # Item 2: per character (lm-eval's acc_norm) "ab" wins, -3/2 > -2/1; per UTF-8 byte "é" would, -2/2 > -3/2.
    items = [MultipleChoice("c", ["aa", "bb"], 0), MultipleChoice("c", ["é", "ab"], 1)]
    scores = [Loglik(-1.0, False), Loglik(-1.0, False), Loglik(-2.0, False), Loglik(-3.0, False)]
    got = multiple_choice_metrics(items, scores)
    assert got["acc"] == 0.5 and got["acc_norm"] == 1.0


def test_cloze_exact_match_is_the_explicit_greedy_continuation(model):
    # Targets: the model's own greedy continuation (must match), and the same with its last token changed.
    rng = random.Random(3)
    items = []
    for _ in range(12):
        context = random_text(rng, rng.randint(2, 20)) + "x"
        tokens = char_encode(context)
        for _ in range(rng.randint(1, 4)):
            with torch.no_grad():
                logits, _ = model(torch.tensor([tokens]))
            tokens.append(int(logits[0, -1].argmax()))
        new_tokens = tokens[len(context):]
        if any(t == EOT or not chr(t - 1).isprintable() for t in new_tokens):
            continue  # keep targets that round-trip through char_encode
        greedy = "".join(chr(t - 1) for t in new_tokens)
        wrong = greedy[:-1] + ("a" if greedy[-1] != "a" else "b")
        items += [Cloze(context, greedy), Cloze(context, wrong)]
    assert len(items) >= 10
    task = Task("lw", "cloze", items)
    got = score_task(model, char_encode, task, EOT, model.cfg.block_size, 64, torch.device("cpu"))
    assert got["acc"] == 0.5  # every greedy target, no altered one

    total = 0.0
    for item in items:
        total += brute_force(model, *encode_pair(char_encode, item.context, item.target, EOT))[0]
    nbytes = sum(len(item.target.encode()) for item in items)
    assert math.isclose(got["bpb"], -total / math.log(2) / nbytes, rel_tol=1e-5)


def test_cloze_chance_is_the_most_common_target():
    items = [Cloze("a", " the"), Cloze("b", " the"), Cloze("c", " king"), Cloze("d", " queen")]
    got = cloze_metrics(items, [Loglik(-1.0, True)] + [Loglik(-1.0, False)] * 3)
    assert got["chance"] == 0.5 and got["acc"] == 0.25


def test_a_continuation_that_adds_no_token_is_refused(model):
    def merging(text: str) -> list[int]:  # "a" + "b" is one token
        return [1] if text.startswith("ab") else char_encode(text)

    task = Task("t", "cloze", [Cloze("a", "b")])
    with pytest.raises(UserError, match="task t: the continuation 'b'.*fix or remove that record"):
        score_task(model, merging, task, EOT, model.cfg.block_size, 64, torch.device("cpu"))


# --------------------------------------------------------------------------- the eval stage

def test_eval_names_task_metrics_by_file_stem_and_prints_chance(model, tmp_path):
    from stages.lib.evaluation.report import split_task_results, task_metrics, task_summary
    tok = types.SimpleNamespace(encode=char_encode, eot_id=EOT)
    mc = load_task(write_lines(tmp_path / "quiz.jsonl", [json.dumps({"context": "ab", "choices": [" c", " d"],
                                                                      "answer": 1})]))
    cloze = load_task(write_lines(tmp_path / "lw.jsonl", [json.dumps({"context": "ab", "target": " c"})]))
    metrics = task_metrics(model, tok, mc, 256, torch.device("cpu"))
    assert set(metrics) == {"task_quiz_acc", "task_quiz_acc_norm", "task_quiz_chance", "task_quiz_n"}
    assert metrics["task_quiz_chance"] == 0.5 and metrics["task_quiz_n"] == 1
    assert "(chance 0.5000)" in task_summary(mc, metrics)
    compared, report = split_task_results(metrics)  # chance and n go to reports/eval.json
    assert set(compared) == {"task_quiz_acc", "task_quiz_acc_norm"} and set(report) == {"task_quiz_chance",
                                                                                        "task_quiz_n"}
    metrics = task_metrics(model, tok, cloze, 256, torch.device("cpu"))
    assert set(metrics) == {"task_lw_acc", "task_lw_bpb", "task_lw_chance", "task_lw_n"}
    assert "bpb" in task_summary(cloze, metrics)


@pytest.mark.parametrize("tasks, phrase", [
    (["a/quiz.jsonl", "b/quiz.jsonl"], "two files share a name"),
    (["quiz.json"], "must be a .jsonl file"),
])
def test_eval_tasks_param_is_checked(tasks, phrase):
    from stages.lib.params import parse_section
    with pytest.raises(UserError, match=phrase):
        parse_section("eval", {"tasks": tasks})
