"""metrics/eval.json's figures, named and rounded, reports/eval.json's, and the lines the eval stage prints.

- val_loss, val_ppl, val_bpb over the chosen validation text, val_bytes and val_tokens scored, unigram_bpb
  (a unigram model fitted on the train split: the baseline any model must beat), checkpoint_step;
- heldout_<stem>_bpb and heldout_<stem>_loss for each eval.heldout file;
- task_<name>_<metric> for each benchmark task file (stages/lib/evaluation/task_format.py), scored by
  stages/lib/evaluation/tasks.py: acc and acc_norm or bpb in metrics/eval.json, the figures runs are compared
  on; the task's chance and its item count n, which depend on the task file alone, in reports/eval.json.
"""
from __future__ import annotations

import torch

from stages.lib.evaluation.scoring import Score, Selection
from stages.lib.evaluation.task_format import Task
from stages.lib.evaluation.tasks import score_task
from stages.lib.tokens.tokenizer_adapter import Tokenizer


def val_metrics(score: Score, unigram: Score, step: int) -> dict:
    return {
        "val_loss": round(score.loss, 4),
        "val_ppl": round(score.ppl, 3),
        "val_bpb": round(score.bpb, 4),
        "unigram_bpb": round(unigram.bpb, 4),
        "val_tokens": score.targets,
        "val_bytes": score.bytes,
        "checkpoint_step": step,
    }


def heldout_metrics(stem: str, score: Score) -> dict:
    return {f"heldout_{stem}_bpb": round(score.bpb, 4), f"heldout_{stem}_loss": round(score.loss, 4)}


REPORT_ONLY = ("chance", "n")  # a task's own figures, not the model's: reports/eval.json


def split_task_results(result: dict) -> tuple[dict, dict]:
    """task_metrics' keys as (metrics/eval.json's, reports/eval.json's)."""
    report = {key: value for key, value in result.items() if key.rsplit("_", 1)[-1] in REPORT_ONLY}
    return {key: value for key, value in result.items() if key not in report}, report


def task_metrics(model, tok: Tokenizer, task: Task, batch_tokens: int, device: torch.device) -> dict:
    """task_<name>_<metric>, all of them (split_task_results parts them between metrics and report).

    Scored in fp32 whatever eval.precision says: the choices of an item are
    often close calls, and bf16 would flip some of them against lm-eval's fp32.
    """
    result = score_task(model, tok.encode, task, tok.eot_id, model.cfg.block_size, batch_tokens, device,
                        torch.float32)
    return {f"task_{task.name}_{key}": value if key == "n" else round(value, 4) for key, value in result.items()}


def val_summary(score: Score, unigram: Score, chosen: Selection, documents: int, max_bytes: int) -> str:
    over = chosen.bytes > max_bytes > 0  # the first document alone is over the budget
    over_note = f", over eval.max_bytes={max_bytes:,}: the first document alone" if over else ""
    return (f"eval: val_loss {score.loss:.4f}, val_ppl {score.ppl:.2f}, val_bpb {score.bpb:.4f} "
            f"(unigram baseline {unigram.bpb:.4f}) on {chosen.documents} of {documents} validation documents "
            f"({score.bytes:,} bytes{over_note}; {score.targets:,} tokens)")


def task_summary(task: Task, metrics: dict) -> str:
    """One line per task with chance beside the accuracy."""
    m = {key.removeprefix(f"task_{task.name}_"): value for key, value in metrics.items()}
    second = f"acc_norm {m['acc_norm']:.4f}" if task.kind == "multiple_choice" else f"bpb {m['bpb']:.4f}"
    return f"task {task.name} ({task.kind}, {m['n']} items): acc {m['acc']:.4f} (chance {m['chance']:.4f}), {second}"
