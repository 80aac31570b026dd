"""Fine-tuning: the loss learns assistant tokens only, conversations become padded rows, exact match scores
the kinds it can beside a chance level computed from the training answers, and the sft stage runs the shared
trainer from the pretrained weights."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from stages.lib.data.instruction_builder import EXACT_MATCH_KINDS, KINDS
from stages.lib.evaluation.exact_match import (
    OPEN_KINDS,
    Tally,
    choose_items,
    exact_match_metrics,
    exact_match_report,
    majority_answers,
    scored_indices,
    tally,
    total,
)
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.gpt import GPT, IGNORE, cross_entropy
from stages.lib.params import SECTIONS, ModelParams, SftParams, TokenizerParams, TrainParams
from stages.lib.tokens.tokenizer_adapter import load_tokenizer, train_tokenizer
from stages.lib.training.conversations import ROW_MULTIPLE, ConversationRows, row_length

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 50


def tiny_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=32), VOCAB)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def gradients(model: GPT, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _hidden(model: GPT, x: torch.Tensor) -> torch.Tensor:
    h = model.wte(x)
    for block in model.blocks:
        h = block(h)
    return h


def test_ignored_targets_change_no_gradient_and_the_mean_is_over_learned_ones():
    model = tiny_model()
    x = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    learned = torch.zeros_like(y, dtype=torch.bool)
    learned[:, 10:] = True  # the "assistant" part
    masked = torch.where(learned, y, IGNORE)
    base = gradients(model, x, masked)

    # The gradient is that of the loss on the learned ("assistant") positions alone: what the prompt
    # positions would have predicted counts for nothing.
    model.zero_grad()
    out = model.lm_head(model.norm_f(_hidden(model, x)))[..., :VOCAB]  # [B, T, V] with grad
    torch.nn.functional.cross_entropy(out[learned], y[learned]).backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, base[name], atol=1e-6), name
    # ... while a learned target does.
    flipped = masked.clone()
    flipped[0, 12] = (flipped[0, 12] + 1) % VOCAB
    assert any(not torch.equal(g, base[n]) for n, g in gradients(model, x, flipped).items())

    with torch.no_grad():
        logits, _ = model(x)
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1), reduction="none")
    expected = per_token[learned.reshape(-1)].mean()
    assert torch.allclose(cross_entropy(logits.reshape(-1, VOCAB), masked.reshape(-1)), expected, atol=1e-6)


def test_conversation_rows_learn_only_marked_tokens_and_pad():
    convs = [([0, 5, 6, 7, 8, 9], [False, False, False, True, True, True]),
             ([0, 3, 4], [False, False, True])]
    rows = ConversationRows(convs, row_len=8, pad_id=0)
    x, y = rows.batch([0, 1])
    assert x.shape == y.shape == (2, 8)
    assert x[0, :5].tolist() == [0, 5, 6, 7, 8] and x[0, 5:].tolist() == [0, 0, 0]
    # target t is token t+1, learned when that token is marked
    assert y[0].tolist() == [IGNORE, IGNORE, 7, 8, 9] + [IGNORE] * 3
    assert y[1].tolist() == [IGNORE, 4] + [IGNORE] * 6
    assert rows.learned_tokens == 4 and rows.n_windows == 2
    assert rows.fill == pytest.approx((5 + 2) / 16)
    with pytest.raises(ValueError):
        ConversationRows([([1] * 10, [True] * 10)], row_len=8, pad_id=0)


def test_row_length_rounds_up_and_stops_at_the_context():
    assert row_length([10, 20], block_size=256) == ROW_MULTIPLE
    assert row_length([ROW_MULTIPLE + 1], block_size=256) == ROW_MULTIPLE
    assert row_length([ROW_MULTIPLE + 2], block_size=256) == 2 * ROW_MULTIPLE
    assert row_length([500], block_size=256) == 256


def test_sft_schedule_overrides_train_and_keeps_the_rest():
    tp = TrainParams(precision="fp32", compile=False, weight_decay=0.05, nproc=2)
    sp = SftParams(max_steps=30, learning_rate=1.0e-4, warmup_steps=3, batch_size=4)
    merged = sp.training(tp)
    assert (merged.max_steps, merged.learning_rate, merged.warmup_steps, merged.batch_size) == (30, 1.0e-4, 3, 4)
    assert (merged.precision, merged.compile, merged.weight_decay, merged.nproc) == ("fp32", False, 0.05, 2)
    assert merged.seed == sp.seed
    assert dataclasses.replace(tp) == tp  # train params untouched


# --------------------------------------------------------------------------- exact match

def conversation(answer: str) -> list[dict]:
    return [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": answer}]


def test_open_kinds_are_the_builders_kinds_that_exact_match_cannot_score():
    assert set(OPEN_KINDS) == set(KINDS) - set(EXACT_MATCH_KINDS)


def test_open_kinds_are_left_out_and_eval_items_counts_the_scored_ones():
    kinds = ["a", "continue", "b", "continue", "a", "b"]
    assert scored_indices(kinds, 0) == [0, 2, 4, 5]
    assert scored_indices(kinds, 3) == [0, 2, 4]
    val = [conversation(f"answer {i}") for i in range(len(kinds))]
    items = choose_items(val, kinds, val, kinds, 0)
    assert items.kinds == ["a", "b", "a", "b"] and items.conversations == [val[i] for i in (0, 2, 4, 5)]
    assert items.open_ended == 2


def test_chance_is_the_exact_match_of_each_kinds_most_frequent_training_answer():
    train_answers = [("a", "x"), ("a", "y"), ("b", "q"), ("a", "y"), ("b", "p")]
    train = [conversation(answer) for _, answer in train_answers]
    train_kinds = [kind for kind, _ in train_answers]
    assert majority_answers(train, train_kinds) == {"a": "y", "b": "p"}  # b: a tie, the first in sorted order
    val_answers = [("a", "y"), ("a", "x"), ("b", "q"), ("a", " y\n"), ("b", "p"), ("c", "y"), ("continue", "y")]
    items = choose_items([conversation(answer) for _, answer in val_answers], [kind for kind, _ in val_answers],
                         train, train_kinds, 0)
    # stripped as the model's answers are; c never occurs in training: no majority answer, chance 0
    assert items.chance == [True, False, False, True, True, False]
    by_kind = tally(items.kinds, [False] * 6, items.chance)
    assert {kind: t.chance_accuracy for kind, t in by_kind.items()} == {"a": 2 / 3, "b": 0.5, "c": 0.0}


def test_per_kind_numbers_add_up_to_the_scored_whole():
    kinds = ["next_line"] * 4 + ["speaker"] * 3 + ["first_word"] * 5
    right = [True, False, False, True, True, True, False, False, False, False, False, True]
    chance = [True, False, False, False, False, False, False, True, True, False, False, False]
    after = tally(kinds, right, chance)
    assert list(after) == ["first_word", "next_line", "speaker"]
    assert after["next_line"] == Tally(items=4, right=2, chance=1)
    assert total(after) == Tally(items=12, right=5, chance=3)
    before = tally(kinds, [False] * 11 + [True], chance)
    metrics, report = exact_match_metrics(before, after), exact_match_report(after)
    assert metrics["sft_exact_match"] == round(5 / 12, 4) and metrics["pretrained_exact_match"] == round(1 / 12, 4)
    assert report["chance_exact_match"] == 0.25
    assert sum(report[f"items_{kind}"] for kind in after) == 12
    weighted = sum(metrics[f"exact_match_{kind}"] * report[f"items_{kind}"] for kind in after) / 12
    assert weighted == pytest.approx(metrics["sft_exact_match"], abs=1e-4)
    weighted = sum(report[f"chance_{kind}"] * report[f"items_{kind}"] for kind in after) / 12
    assert weighted == pytest.approx(report["chance_exact_match"], abs=1e-4)
    # The data's figures (chance, items) are the report's alone: metrics/sft.json keeps what runs differ in.
    assert not any(key.startswith(("chance", "items")) for key in metrics)
    assert exact_match_metrics({}, {}) == {} == exact_match_report({})  # nothing scored: nothing to divide by


# --------------------------------------------------------------------------- the stage, as a user runs it

WORDS = ["apple", "river", "stone", "cloud", "green", "night", "horse", "bread"]


def write_instruction_files(project, n_train: int, n_val: int) -> None:
    """A learnable instruction: repeat the word after "Say:"; and in val, after every fourth, an open-ended one."""
    def convs(n, offset, open_ended):
        for i in range(n):
            word = WORDS[(i + offset) % len(WORDS)]
            yield {"messages": [{"role": "user", "content": f"Say: {word}"},
                                {"role": "assistant", "content": word}], "kind": "say"}
            if open_ended and i % 4 == 3:
                yield {"messages": [{"role": "user", "content": f"Continue: {word}"},
                                    {"role": "assistant", "content": " ".join(WORDS[:3])}], "kind": "continue"}
    folder = project / "data/instructions"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in convs(n_train, 0, False)))
    (folder / "val.jsonl").write_text("".join(json.dumps(c) + "\n" for c in convs(n_val, 3, True)))


@pytest.fixture(scope="module")
def sft_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("sft")
    text = "Say: apple river stone cloud green night horse bread. " * 200
    tok = train_tokenizer(iter([text]), project / "artifacts/tokenizer", "bpe", 320, 1,
                          TokenizerParams().special_tokens, True, 1)
    torch.manual_seed(0)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=32), tok.vocab_size)
    save_checkpoint(project / "artifacts/checkpoints/model.pt", model, tok.fingerprint, step=0, val_loss=9.0)
    write_instruction_files(project, 64, 16)
    params = {name: {} for name in SECTIONS}
    params["train"] = {"precision": "fp32", "device": "cpu", "compile": False}
    params["sft"] = {"max_steps": 60, "batch_size": 8, "learning_rate": 3.0e-3, "warmup_steps": 5,
                     "eval_interval": 20, "eval_batches": 2, "eval_items": 16, "max_new_tokens": 4}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return project


def run_sft(project, expect_rc: int = 0) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.sft"], cwd=project, env=env, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == expect_rc, f"rc {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def test_sft_stage_fine_tunes_the_pretrained_model_and_reports_both(sft_project):
    log = run_sft(sft_project)
    metrics = json.loads((sft_project / "metrics/sft.json").read_text())
    assert metrics["sft_val_loss"] < metrics["pretrained_val_loss"] - 1.0, metrics
    assert metrics["sft_exact_match"] > metrics["pretrained_exact_match"], metrics
    # The 16 "say" items are scored, the 4 open-ended ones are not. Chance: the training answers are the 8
    # words 8 times each, so the majority answer is the first in sorted order, "apple": 2 of the 16 val items.
    details = json.loads((sft_project / "reports/sft.json").read_text())
    assert details["items_say"] == 16 and metrics["exact_match_say"] == metrics["sft_exact_match"]
    assert details["chance_say"] == details["chance_exact_match"] == 2 / 16  # the data's figures: the report's
    assert not any(name.endswith("_continue") for name in {**metrics, **details})
    assert details["pretrained_exact_match_say"] == metrics["pretrained_exact_match"]
    assert details["val_conversations"] == 20 and details["scored_conversations"] == 16
    assert 0 < details["row_fill"] <= 1
    assert not set(details) & set(metrics)  # each figure in one place
    tuned = torch.load(sft_project / "artifacts/checkpoints/sft.pt", weights_only=True)
    assert tuned["tokenizer_fingerprint"] == load_tokenizer(sft_project / "artifacts/tokenizer").fingerprint
    assert "exact-match accuracy" in log and "(4 open-ended conversations left out: continue)" in log
    assert not (sft_project / ".cache/sft/resume.pt").exists()  # a finished run leaves no resume state


def test_sft_refuses_a_conversation_longer_than_the_context_or_skips_it(sft_project, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(sft_project, project, ignore=shutil.ignore_patterns("sft.pt", "metrics", "dvclive", ".cache"))
    long = {"messages": [{"role": "user", "content": "Say: " + "apple " * 60}, {"role": "assistant", "content": "x"}]}
    with open(project / "data/instructions/train.jsonl", "a") as f:
        f.write(json.dumps(long) + "\n")
    log = run_sft(project, expect_rc=2)  # run_stage: a user error exits 2
    assert "data/instructions/train.jsonl: record 65:" in log and "sft.bad_records" in log
    assert "Traceback" not in log

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["sft"].update(bad_records="skip", max_steps=2, warmup_steps=0, eval_items=2)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    log = run_sft(project)
    assert "skipped 1 records" in log and "too_long" in log
