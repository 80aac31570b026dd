"""eval: score the best checkpoint on the validation split (and any eval.heldout files).

Writes metrics/eval.json (val_loss, val_ppl, val_bpb over the first
eval.max_bytes of the validation documents, val_bytes and val_tokens scored,
and unigram_bpb: the bits per byte of a unigram model fitted on the train
split, the baseline any model must beat), task_<name>_<metric> for each
benchmark task file in eval.tasks (stages/lib/evaluation/tasks.py; each task's
chance and item count go to reports/eval.json), and metrics/samples.md (text
generated from eval.prompts, or from prompts drawn from the validation
documents when that is empty).

The validation text is chosen by bytes (whole documents in the split's order),
so two runs with different tokenizers score the same text: equal val_bytes.
val_loss is over that text; train's best_val_loss is over other windows
(train.eval_batches of them, spread over the split, and the best of many
evaluations), so the two are not comparable.
"""
from __future__ import annotations

from pathlib import Path

import torch

from stages.lib.atomic import write_json, write_text
from stages.lib.errors import run_stage
from stages.lib.evaluation.report import (
    heldout_metrics,
    split_task_results,
    task_metrics,
    task_summary,
    val_metrics,
    val_summary,
)
from stages.lib.evaluation.samples import choose_prompts, samples_markdown, validation_ids
from stages.lib.evaluation.scoring import (
    Documents,
    check_val_bytes,
    heldout_paths,
    heldout_stream,
    score_model,
    score_unigram,
    select_documents,
    unigram_log_probs,
)
from stages.lib.evaluation.task_format import load_task
from stages.lib.model.checkpoint import RETRAIN, check_tokenizer, load_checkpoint
from stages.lib.params import EvalParams, load_params
from stages.lib.runtime import resolve_device, resolve_precision, seed_everything
from stages.lib.tokens.tokenizer_adapter import load_tokenizer
from stages.lib.training import memory

PARAM_SECTIONS = ["eval", "pack.seed", "pack.val_fraction"]  # pack's split names samples.md's documents
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
SHARD_DIR = Path("data/shards")
CLEAN_DIR = Path("data/interim/clean")  # the documents pack split: their ids name the sample prompts' sources
METRICS = Path("metrics/eval.json")
REPORT = Path("reports/eval.json")  # each task's chance and item count: the task file's, not the model's
SAMPLES = Path("metrics/samples.md")


def check_batch_fits(model, vocab_size: int, streams: list, batch_size: int, device: torch.device) -> None:
    """Refuse an eval.batch_size whose forward pass cannot fit, before it is killed by the kernel.

    The batches hold at most a stream's windows, so a large batch_size over little text still runs.
    """
    T = model.cfg.block_size
    rows = min(batch_size, max((max(s.end // T, 1) for s in streams), default=1))
    memory.check_inference_fits(memory.scoring_bytes(model.cfg, vocab_size, rows, T), device,
                                f"scoring {rows} windows of {T} tokens at once (eval.batch_size={batch_size})",
                                "lower eval.batch_size")


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    ep: EvalParams = params["eval"]
    device = resolve_device(ep.device, "eval.device")
    dtype = resolve_precision(ep.precision, device, "eval.precision")
    heldout = heldout_paths(ep.heldout)  # checked before the long work
    tasks = [load_task(path) for path in ep.tasks]
    seed_everything(ep.seed)
    model, meta = load_checkpoint(CHECKPOINT, device)
    tok = load_tokenizer(TOKENIZER_DIR)
    check_tokenizer(meta, tok.fingerprint, TOKENIZER_DIR, RETRAIN)
    token_bytes = torch.from_numpy(tok.token_bytes())
    block_size = model.cfg.block_size

    val = Documents.from_split(SHARD_DIR, "val")
    doc_bytes = val.document_bytes(token_bytes.numpy())  # [documents]
    check_val_bytes(doc_bytes, SHARD_DIR / "meta.json")
    chosen = select_documents(val, doc_bytes, tok.eot_id, ep.max_bytes)
    check_batch_fits(model, tok.vocab_size, chosen.streams, ep.batch_size, device)
    score = score_model(model, chosen.streams, block_size, ep.batch_size, token_bytes, device, dtype)
    assert score.bytes == chosen.bytes, "every byte of the chosen documents is scored, once"
    unigram = score_unigram(unigram_log_probs(Documents.from_split(SHARD_DIR, "train").shards, tok.vocab_size),
                            chosen.streams, token_bytes)
    metrics = val_metrics(score, unigram, meta["step"])
    for path in heldout:
        stream = heldout_stream(path, tok)
        check_batch_fits(model, tok.vocab_size, [stream], ep.batch_size, device)
        held = score_model(model, [stream], block_size, ep.batch_size, token_bytes, device, dtype)
        metrics.update(heldout_metrics(path.stem, held))
    task_lines, report = [], {}
    for task in tasks:
        result = task_metrics(model, tok, task, ep.batch_size * block_size, device)
        compared, task_report = split_task_results(result)
        metrics.update(compared)
        report.update(task_report)
        task_lines.append(task_summary(task, result))

    write_json(METRICS, metrics)
    write_json(REPORT, report)
    names = validation_ids(CLEAN_DIR, params["pack.seed"], params["pack.val_fraction"])
    prompts, how = choose_prompts(ep, val, tok, names)
    write_text(SAMPLES, samples_markdown(model, tok, ep, prompts, how, device))
    print(val_summary(score, unigram, chosen, len(val), ep.max_bytes))
    for line in task_lines:
        print(line)


if __name__ == "__main__":
    run_stage(main)
