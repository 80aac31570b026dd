"""eval: score the best checkpoint on the validation split (and any eval.heldout files).

Writes metrics/eval.json (val_loss, val_ppl, val_bpb over the first
eval.max_bytes of the validation documents, val_bytes and val_tokens scored,
and unigram_bpb: the bits per byte of a unigram model fitted on the train
split, the baseline any model must beat), task_<name>_<metric> for each
benchmark task file in eval.tasks (stages/lib/evaluation/tasks.py), and
metrics/samples.md (text generated from eval.prompts, or from prompts drawn
from the validation documents when that is empty).

The validation text is chosen by bytes (whole documents in the split's order),
so two runs with different tokenizers score the same text: equal val_bytes.
val_loss is over that text; train's best_val_loss is over other windows
(train.eval_batches of them, spread over the split, and the best of many
evaluations), so the two are not comparable.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stages.lib.atomic import write_json, write_text
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.errors import UserError, run_stage
from stages.lib.params import EvalParams, load_params
from stages.lib.runtime import resolve_device, resolve_precision, seed_everything
from stages.lib.evaluation.scoring import (Documents, Stream, score_model, score_unigram, select_documents,
                                           unigram_log_probs)
from stages.lib.evaluation.tasks import Task, load_task, score_task
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer

PARAM_SECTIONS = ["eval"]
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
SHARD_DIR = Path("data/shards")
METRICS = Path("metrics/eval.json")
SAMPLES = Path("metrics/samples.md")
PROMPT_WORDS = 5  # a drawn prompt: the first words of a line, enough to set the scene, short enough to continue
PROMPT_TRIES = 20  # draws per prompt wanted before settling for fewer (a split of few distinct lines)


def heldout_paths(names: list[str]) -> list[Path]:
    """eval.heldout as paths, refusing two files whose metrics would share a name (heldout_<stem>_bpb)."""
    paths, by_stem = list(map(Path, names)), {}
    for path in paths:
        if not path.is_file():
            raise UserError(f"eval.heldout names {path}, which is not a file: fix the path or remove it")
        if path.stem in by_stem:
            raise UserError(f"eval.heldout names {by_stem[path.stem]} and {path}: both would be reported as "
                            f"heldout_{path.stem}_bpb; rename one")
        by_stem[path.stem] = path
    return paths


def heldout_stream(path: Path, tok: Tokenizer) -> Stream:
    """The file's tokens and a closing end-of-text, every one scored (after one end-of-text of context)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    ids = np.asarray(tok.encode(text) + [tok.eot_id], dtype=np.int64)
    if len(ids) < 2:
        raise UserError(f"eval.heldout file {path} is empty: there is nothing to score; remove it")
    return Stream(ids, len(ids), tok.eot_id)


def check_val_bytes(doc_bytes: np.ndarray, meta_path: Path) -> None:
    """Warn when the val shards spell fewer bytes than pack read: then val_bpb is not over the exact text."""
    if not meta_path.is_file():
        raise UserError(f"{meta_path} not found: run the pack stage first (dvc repro)")
    text_bytes = json.loads(meta_path.read_text())["splits"]["val"]["bytes"]
    if int(doc_bytes.sum()) != text_bytes:
        print(f"warning: the val shards spell {int(doc_bytes.sum()):,} bytes of the {text_bytes:,} bytes of "
              f"validation text (the rest became <unk>): val_bpb is not over exactly that text, nor comparable "
              f"with another tokenizer's; set tokenizer.byte_fallback: true", file=sys.stderr)


@dataclass
class Prompt:
    text: str
    source: str  # where it came from, shown in metrics/samples.md


def draw_prompts(docs: Documents, decode: Callable[[list[int]], str], n: int, seed: int) -> list[Prompt]:
    """Up to n distinct prompts: the first PROMPT_WORDS words of seeded draws of a validation document and line.

    Drawn by document and line, never by token, so every tokenizer of the
    same corpus gets the same prompts.
    """
    rng = np.random.default_rng(seed)
    prompts: dict[str, Prompt] = {}
    for _ in range(n * PROMPT_TRIES):
        if len(prompts) == n:
            break
        index = int(rng.integers(len(docs)))
        lines = decode(docs.document(index)[:-1].tolist()).split("\n")  # [:-1]: its end-of-text
        numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
        if not numbered:
            continue
        number, line = numbered[int(rng.integers(len(numbered)))]
        text = " ".join(line.split()[:PROMPT_WORDS])
        prompts.setdefault(text, Prompt(text, f"validation document {index + 1} of {len(docs)}, line {number}"))
    return list(prompts.values())


def choose_prompts(ep: EvalParams, val: Documents, tok: Tokenizer) -> tuple[list[Prompt], str]:
    """eval.prompts when given, else prompts drawn from the validation documents; and a line saying which."""
    if ep.prompts:
        return [Prompt(p, "eval.prompts") for p in ep.prompts], "Prompts: eval.prompts."
    prompts = draw_prompts(val, tok.decode, ep.n_prompts, ep.seed)
    return prompts, (f"Prompts: {len(prompts)} drawn from the validation documents (eval.prompts is empty; "
                     f"eval.n_prompts {ep.n_prompts}, eval.seed {ep.seed}): the first {PROMPT_WORDS} words of a line.")


def task_metrics(model, tok: Tokenizer, task: Task, batch_tokens: int, device: torch.device) -> dict:
    """task_<name>_<metric> for metrics/eval.json.

    Scored in fp32 whatever eval.precision says: the choices of an item are
    often close calls, and bf16 would flip some of them against lm-eval's fp32.
    """
    result = score_task(model, tok.encode, task, tok.eot_id, model.cfg.block_size, batch_tokens, device,
                        torch.float32)
    return {f"task_{task.name}_{key}": value if key == "n" else round(value, 4) for key, value in result.items()}


def task_summary(task: Task, metrics: dict) -> str:
    """One line per task with chance beside the accuracy."""
    m = {key.removeprefix(f"task_{task.name}_"): value for key, value in metrics.items()}
    second = f"acc_norm {m['acc_norm']:.4f}" if task.kind == "multiple_choice" else f"bpb {m['bpb']:.4f}"
    return f"task {task.name} ({task.kind}, {m['n']} items): acc {m['acc']:.4f} (chance {m['chance']:.4f}), {second}"


def write_samples(model, tok: Tokenizer, ep: EvalParams, prompts: list[Prompt], how: str,
                  device: torch.device) -> None:
    generator = torch.Generator(device=device).manual_seed(ep.seed)
    parts = ["# Samples", "", how, "", f"temperature {ep.temperature}, top_k {ep.top_k}, "
             f"{ep.max_new_tokens} new tokens, seed {ep.seed}", ""]
    for prompt in prompts:
        ids = tok.encode(prompt.text) or [tok.eot_id]
        out = generate(model, torch.tensor([ids], device=device), ep.max_new_tokens,
                       Sampling(ep.temperature, ep.top_k), generator=generator)
        parts += [f"## {prompt.text}", "", f"From {prompt.source}.", "", "```text", tok.decode(ids + out.ids[0]),
                  "```", ""]
    write_text(SAMPLES, "\n".join(parts))


def main() -> None:
    ep: EvalParams = load_params(PARAM_SECTIONS)["eval"]
    device = resolve_device(ep.device, "eval.device")
    dtype = resolve_precision(ep.precision, device, "eval.precision")
    heldout = heldout_paths(ep.heldout)  # checked before the long work
    tasks = [load_task(path) for path in ep.tasks]
    seed_everything(ep.seed)
    model, meta = load_checkpoint(CHECKPOINT, device)
    tok = load_tokenizer(TOKENIZER_DIR)
    check_tokenizer(meta, tok.fingerprint, TOKENIZER_DIR)
    token_bytes = torch.from_numpy(tok.token_bytes())
    block_size = model.cfg.block_size

    val = Documents.from_split(SHARD_DIR, "val")
    doc_bytes = val.document_bytes(token_bytes.numpy())  # [documents]
    check_val_bytes(doc_bytes, SHARD_DIR / "meta.json")
    chosen = select_documents(val, doc_bytes, tok.eot_id, ep.max_bytes)
    score = score_model(model, chosen.streams, block_size, ep.batch_size, token_bytes, device, dtype)
    assert score.bytes == chosen.bytes, "every byte of the chosen documents is scored, once"
    unigram = score_unigram(unigram_log_probs(Documents.from_split(SHARD_DIR, "train").shards, tok.vocab_size),
                            chosen.streams, token_bytes)
    metrics = {
        "val_loss": round(score.loss, 4),
        "val_ppl": round(score.ppl, 3),
        "val_bpb": round(score.bpb, 4),
        "unigram_bpb": round(unigram.bpb, 4),
        "val_tokens": score.targets,
        "val_bytes": score.bytes,
        "checkpoint_step": meta["step"],
    }
    for path in heldout:
        held = score_model(model, [heldout_stream(path, tok)], block_size, ep.batch_size, token_bytes, device, dtype)
        metrics[f"heldout_{path.stem}_bpb"] = round(held.bpb, 4)
        metrics[f"heldout_{path.stem}_loss"] = round(held.loss, 4)

    task_lines = []
    for task in tasks:
        result = task_metrics(model, tok, task, ep.batch_size * block_size, device)
        metrics.update(result)
        task_lines.append(task_summary(task, result))

    write_json(METRICS, metrics)
    prompts, how = choose_prompts(ep, val, tok)
    write_samples(model, tok, ep, prompts, how, device)
    over = chosen.bytes > ep.max_bytes > 0  # the first document alone is over the budget
    over_note = f", over eval.max_bytes={ep.max_bytes:,}: the first document alone" if over else ""
    print(f"eval: val_loss {score.loss:.4f}, val_ppl {score.ppl:.2f}, val_bpb {score.bpb:.4f} "
          f"(unigram baseline {unigram.bpb:.4f}) on {chosen.documents} of {len(val)} validation documents "
          f"({score.bytes:,} bytes{over_note}; {score.targets:,} tokens)")
    for line in task_lines:
        print(line)


if __name__ == "__main__":
    run_stage(main)
