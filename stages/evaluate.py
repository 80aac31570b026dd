"""eval: score the best checkpoint on the validation split (and any eval.heldout files).

Writes metrics/eval.json (val_loss, val_ppl, val_bpb, and unigram_bpb: the
bits per byte of a unigram model fitted on the train split, the baseline any
model must beat), task_<name>_<metric> for each benchmark task file in
eval.tasks (stages/lib/evaluation/tasks.py), and metrics/samples.md (text
generated from eval.prompts).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stages.lib.atomic import write_json, write_text
from stages.lib.training.batches import TokenWindows
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.errors import UserError, run_stage
from stages.lib.params import EvalParams, load_params
from stages.lib.training.runtime import resolve_device, resolve_precision, seed_everything
from stages.lib.evaluation.scoring import score_model, score_unigram, unigram_log_probs, window_indices
from stages.lib.evaluation.tasks import Task, load_task, score_task
from stages.lib.tokens.tokenizer_adapter import Tokenizer, load_tokenizer

PARAM_SECTIONS = ["eval"]
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
SHARD_DIR = Path("data/shards")
METRICS = Path("metrics/eval.json")
SAMPLES = Path("metrics/samples.md")


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


def heldout_windows(path: Path, tok: Tokenizer, block_size: int) -> TokenWindows:
    """The file's tokens in windows of the model's context; a file shorter than that is one shorter window."""
    text = path.read_text(encoding="utf-8", errors="replace")
    ids = np.asarray(tok.encode(text) + [tok.eot_id], dtype=np.int64)
    if len(ids) < 2:
        raise UserError(f"eval.heldout file {path} is empty: there is nothing to score; remove it")
    return TokenWindows([ids], min(block_size, len(ids) - 1), f"eval.heldout file {path}")


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


def write_samples(model, tok: Tokenizer, ep: EvalParams, device: torch.device) -> None:
    generator = torch.Generator(device=device).manual_seed(ep.seed)
    parts = ["# Samples", "", f"temperature {ep.temperature}, top_k {ep.top_k}, "
             f"{ep.max_new_tokens} new tokens, seed {ep.seed}", ""]
    for prompt in ep.prompts:
        ids = tok.encode(prompt) or [tok.eot_id]
        out = generate(model, torch.tensor([ids], device=device), ep.max_new_tokens,
                       Sampling(ep.temperature, ep.top_k), generator=generator)
        parts += [f"## {prompt}", "", "```text", tok.decode(ids + out.ids[0]), "```", ""]
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

    val = TokenWindows.from_split(SHARD_DIR, "val", block_size)
    windows = window_indices(val, ep.max_tokens)
    score = score_model(model, val, windows, ep.batch_size, token_bytes, device, dtype)
    unigram = score_unigram(unigram_log_probs(TokenWindows.from_split(SHARD_DIR, "train", block_size),
                                              tok.vocab_size), val, windows, token_bytes)
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
        data = heldout_windows(path, tok, block_size)
        held = score_model(model, data, window_indices(data, 0), ep.batch_size, token_bytes, device, dtype)
        metrics[f"heldout_{path.stem}_bpb"] = round(held.bpb, 4)
        metrics[f"heldout_{path.stem}_loss"] = round(held.loss, 4)

    task_lines = []
    for task in tasks:
        result = task_metrics(model, tok, task, ep.batch_size * block_size, device)
        metrics.update(result)
        task_lines.append(task_summary(task, result))

    write_json(METRICS, metrics)
    write_samples(model, tok, ep, device)
    print(f"eval: val_loss {score.loss:.4f}, val_ppl {score.ppl:.2f}, val_bpb {score.bpb:.4f} "
          f"(unigram baseline {unigram.bpb:.4f}) on {score.targets:,} tokens")
    for line in task_lines:
        print(line)


if __name__ == "__main__":
    run_stage(main)
