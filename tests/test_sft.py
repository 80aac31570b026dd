"""Fine-tuning: the loss learns assistant tokens only, conversations become padded rows, and the sft stage
runs the shared trainer from the pretrained weights."""
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


# --------------------------------------------------------------------------- the stage, as a user runs it

def write_instruction_files(project, n_train: int, n_val: int) -> None:
    """A learnable instruction: repeat the word after "Say:"."""
    words = ["apple", "river", "stone", "cloud", "green", "night", "horse", "bread"]
    def convs(n, offset):
        for i in range(n):
            word = words[(i + offset) % len(words)]
            yield {"messages": [{"role": "user", "content": f"Say: {word}"},
                                {"role": "assistant", "content": word}], "kind": "say"}
    folder = project / "data/instructions"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in convs(n_train, 0)))
    (folder / "val.jsonl").write_text("".join(json.dumps(c) + "\n" for c in convs(n_val, 3)))


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
    assert metrics["sft_accuracy"] > metrics["pretrained_accuracy"], metrics
    assert metrics["chance_accuracy"] == 0.0
    details = json.loads((sft_project / "reports/sft.json").read_text())
    assert details["sft_accuracy_say"] == metrics["sft_accuracy"]  # one kind: per-kind is the whole
    assert details["val_conversations"] == details["scored_conversations"] == 16
    assert 0 < details["row_fill"] <= 1
    assert not set(details) & set(metrics)  # each figure in one place
    tuned = torch.load(sft_project / "artifacts/checkpoints/sft.pt", weights_only=True)
    assert tuned["tokenizer_fingerprint"] == load_tokenizer(sft_project / "artifacts/tokenizer").fingerprint
    assert "exact-match accuracy" in log
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
