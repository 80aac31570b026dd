"""lm-evaluation-harness on the exported model agrees with eval.tasks on the same task files.

The model is exported by the export stage's own function and run by `lm_eval` (the `hf` model type, the
task definitions the tasks stage writes), offline, in a subprocess as a user would run it. About 30 s here,
most of it lm-eval's import; installing lm-eval adds about 25 s to CI.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from stages.lib.evaluation.task_format import lm_eval_config, load_task
from stages.lib.evaluation.tasks import score_task
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.gpt import GPT
from stages.lib.model.hf_folder import export
from stages.lib.params import ModelParams
from stages.lib.tokens.tokenizer_adapter import train_tokenizer

pytestmark = pytest.mark.slow  # lm-evaluation-harness on an exported model

pytest.importorskip("lm_eval")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "raw"


def lines_of_shipped_text() -> list[str]:
    path = sorted(CORPUS.rglob("*.txt"))[0]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 20]


def write_tasks(folder: Path, lines: list[str]) -> dict[str, Path]:
    """A 4-way multiple choice task (which line comes next) and a cloze task (the last word of a line)."""
    rng = random.Random(0)
    folder.mkdir()
    mc, cloze = [], []
    for i in range(0, 160, 4):
        context = "\n".join(lines[i:i + 3]) + "\n"
        choices = [lines[i + 3]] + rng.sample(lines[200:400], 3)
        rng.shuffle(choices)
        mc.append({"context": context, "choices": choices, "answer": choices.index(lines[i + 3])})
        head, _, word = lines[i].rpartition(" ")
        cloze.append({"context": "\n".join(lines[i + 1:i + 3]) + "\n" + head, "target": " " + word})
    paths = {"next_line": folder / "next_line.jsonl", "last_word": folder / "last_word.jsonl"}
    for name, items in (("next_line", mc), ("last_word", cloze)):
        paths[name].write_text("".join(json.dumps(item) + "\n" for item in items))
        config = lm_eval_config(name, load_task(paths[name]).items, paths[name].resolve())
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


def test_lm_eval_on_the_exported_model_matches_eval_tasks(tmp_path):
    lines = lines_of_shipped_text()
    tok = train_tokenizer(iter(["\n".join(lines)]), tmp_path / "tok", "bpe", 600, 2, ["<|endoftext|>"], True, 1)
    torch.manual_seed(0)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=48, block_size=64), tok.vocab_size)
    with torch.no_grad():  # random weights, all of them: accuracies away from 0 and 1, decided by the logits
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.eval()
    save_checkpoint(tmp_path / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    export(tmp_path / "model.pt", tmp_path / "tok", tmp_path / "hf", "float32")
    tasks = write_tasks(tmp_path / "tasks", lines)

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf",
                    "--model_args", f"pretrained={tmp_path / 'hf'},dtype=float32",
                    "--include_path", str(tmp_path / "tasks"), "--tasks", "next_line,last_word",
                    "--device", "cpu", "--batch_size", "8", "--output_path", str(tmp_path / "out")],
                   check=True, env=env, cwd=tmp_path, capture_output=True)
    results = json.loads(next((tmp_path / "out").rglob("results*.json")).read_text())["results"]

    encode = tok.encode
    for name, metrics in (("next_line", ("acc", "acc_norm")), ("last_word", ("acc",))):
        ours = score_task(model, encode, load_task(tasks[name]), tok.eot_id, model.cfg.block_size, 4096,
                          torch.device("cpu"))
        for metric in metrics:
            theirs = results[name][f"{metric},none"]
            assert abs(theirs - ours[metric]) <= 1e-3, (name, metric, theirs, ours[metric])
    # A check with teeth: the multiple-choice accuracies are neither all-right nor all-wrong.
    assert 0.0 < results["next_line"]["acc,none"] < 1.0
