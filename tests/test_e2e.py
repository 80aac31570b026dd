"""End to end: the real DAG under `dvc repro` and `dvc exp run`, on a copy of the project.

Tiny params and a few of the shipped files keep it to about a minute on a 2-core CPU.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.lib.atomic import SCRATCH

pytestmark = pytest.mark.slow  # a whole pipeline through dvc repro and dvc exp run

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data/raw/shakespeare-milton"
FILES = ["shakespeare/hamlet_gut.txt", "shakespeare/tempest_gut.txt", "shakespeare/sonnets_gut.txt",
         "milton/comus.txt", "milton/comus_gut.txt"]  # the last two: exact duplicates

TINY = {
    "merge": {"doc_mode": "paragraph"},  # thousands of small documents: both splits get some
    "clean": {"min_chars": 20, "workers": 2, "quality": {"filters": ["alpha_words"]},
              "line_dedupe": {"min_docs": 2}},
    "tokenizer": {"vocab_size": 512},
    "pack": {"val_fraction": 0.1},
    "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
    "train": {"max_steps": 40, "batch_size": 8, "warmup_steps": 5, "eval_interval": 20, "eval_batches": 2,
              "compile": False},
    "eval": {"max_bytes": 12000, "max_new_tokens": 20, "prompts": ["HAMLET."]},
    # contexts and continuations that fit block_size 64
    "tasks": {"n_items": 40, "context_lines": 2, "choice_lines": 1, "max_chars": 100},
    "instructions": {"n_train": 200, "n_val": 20, "max_chars": 80},
    "sft": {"max_steps": 10, "batch_size": 4, "warmup_steps": 2, "eval_interval": 5, "eval_batches": 2,
            "eval_items": 10, "max_new_tokens": 8, "bad_records": "skip"},
}
AFTER_TRAIN = {"train", "eval", "sft", "export", "export_sft"}


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict):
            deep_update(base.setdefault(key, {}), value)
        else:
            base[key] = value
    return base


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(cwd)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def stages_that_ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh git + DVC project: this repo's code and dvc.yaml, a few corpus files, tiny params."""
    work = tmp_path_factory.mktemp("e2e")
    shutil.copytree(ROOT / "stages", work / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, work / name)
    (work / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc/config", work / ".dvc/config")
    for rel in FILES:
        (work / "data/raw" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / rel, work / "data/raw" / rel)
    params = deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], work)
    run(["git", "config", "user.email", "test@example.com"], work)
    run(["git", "config", "user.name", "test"], work)
    run([sys.executable, "-m", "dvc", "init", "-q", "--force"], work)
    shutil.copy(ROOT / ".dvc/config", work / ".dvc/config")
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "init"], work)
    repro = run([sys.executable, "-m", "dvc", "repro"], work)
    assert stages_that_ran(repro.stdout) == {"merge", "clean", "tokenizer", "pack", "tasks",
                                             "instructions"} | AFTER_TRAIN
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "first run"], work)
    return work


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_outputs_and_metrics_are_sane(project):
    assert (project / "artifacts/tokenizer/tokenizer.json").is_file()
    assert (project / "artifacts/checkpoints/model.pt").is_file()
    assert list((project / "data/shards").glob("train-*.bin")) and list((project / "data/shards").glob("val-*.bin"))
    assert (project / "dvclive/train/plots/metrics/train_loss.tsv").is_file()

    clean = read_json(project / "metrics/clean.json")
    assert clean["documents_out"] < clean["documents_in"]
    assert clean["removed_documents_exact_duplicate"] > 0  # comus.txt == comus_gut.txt
    assert read_json(project / "metrics/tokenizer.json")["vocab_size"] == 512
    pack = read_json(project / "metrics/pack.json")
    assert pack["train_tokens"] > 0 and pack["val_tokens"] > 0

    ev = read_json(project / "metrics/eval.json")
    assert all(math.isfinite(ev[k]) for k in ("val_loss", "val_ppl", "val_bpb", "unigram_bpb"))
    assert ev["val_loss"] < math.log(512)  # it learned something: better than uniform
    assert math.isclose(ev["val_ppl"], math.exp(ev["val_loss"]), rel_tol=1e-3)
    assert 0 < ev["val_bpb"] < 8
    train = read_json(project / "metrics/train.json")
    assert train["tokens_per_sec"] > 0 and train["best_val_loss"] < math.log(512)
    assert "HAMLET." in (project / "metrics/samples.md").read_text()
    assert {"task_next_passage_acc", "task_last_word_acc"} <= set(ev)
    report = read_json(project / "reports/eval.json")  # the tasks' own figures, apart from the model's
    assert {"task_next_passage_chance", "task_last_word_n"} <= set(report) and not set(report) & set(ev)
    sft = read_json(project / "metrics/sft.json")
    assert sft["sft_val_loss"] < sft["pretrained_val_loss"]
    for folder in ("artifacts/hf", "artifacts/hf-sft"):
        assert (project / folder / "model.safetensors").is_file() and (project / folder / "tokenizer.json").is_file()


def test_after_repro_status_is_clean_and_a_second_repro_runs_nothing(project):
    status = run([sys.executable, "-m", "dvc", "status"], project).stdout
    assert "Data and pipelines are up to date." in status, status
    assert stages_that_ran(run([sys.executable, "-m", "dvc", "repro"], project).stdout) == set()
    assert not list((project / "data/interim").glob(".*"))  # nothing temporary beside the outputs


def test_metrics_show_reports_eval_metrics(project):
    out = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], project).stdout
    metrics = json.loads(out)
    flat = json.dumps(metrics)
    for name in ("val_loss", "val_ppl", "val_bpb"):
        assert name in flat


def test_model_params_rerun_only_what_follows_train_and_never_retokenize(project):
    # model.block_size is the model's: the shards hold a stream, so pack must not rerun either. (Some tasks'
    # continuations are longer than 48 tokens: eval scores none here.)
    # What a kill -9 during a save leaves in the scratch folder: the next stage to run removes it.
    leftovers = [project / SCRATCH / "data%2Finterim%2Fclean.999999999.abc_1234.tmp",
                 project / SCRATCH / "artifacts%2Fcheckpoints%2Fmodel.pt.999999999.ghi_9012.tmp"]
    (leftovers[0] / "part").mkdir(parents=True)
    leftovers[1].write_bytes(b"partial")
    out = run([sys.executable, "-m", "dvc", "exp", "run", "-S", "model.n_layer=1", "-S", "model.block_size=48",
               "-S", "eval.tasks=[]"], project)
    assert stages_that_ran(out.stdout) == AFTER_TRAIN
    assert not [path for path in leftovers if path.exists()]


def test_generate_continues_a_prompt(project):
    # Mid-sentence: after a bare "HAMLET." (a speaker's line) a model that learned the corpus may well sample
    # the end of the document at once, which ends generation.
    prompt = "HAMLET. To be, or not to be, that is the"
    out = run([sys.executable, "-m", "stages.generate", "--checkpoint", "artifacts/checkpoints/model.pt",
               "--prompt", prompt, "--max-new-tokens", "30", "--temperature", "0.7", "--top-k", "40"], project)
    assert out.stdout.startswith(prompt)
    assert len(out.stdout.rstrip("\n")) > len(prompt)
