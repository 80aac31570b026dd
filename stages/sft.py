"""sft: fine-tune the pretrained model on instructions in the chat format.

The story: load the pretrained checkpoint and its tokenizer, read the instruction files (chat JSONL or
Alpaca JSON/JSONL), encode each conversation with the one chat template (stages/lib/tokens/chat.py) into a
padded row whose targets are the assistant's tokens alone (stages/lib/training/conversations.py), score the
pretrained model on the held-out conversations, fine-tune with the training loop pretraining uses
(stages/lib/training/trainer.py: same optimizer, schedule, precision, compile, resume, DDP/FSDP, divergence
guard), and score the fine-tuned model the same way. The best model goes to artifacts/checkpoints/sft.pt.

metrics/sft.json holds, for both models, the validation loss on assistant tokens and the exact-match accuracy
of greedy answers over the kinds exact match can score (stages/lib/evaluation/exact_match.py), and per kind
the fine-tuned model's exact match. reports/sft.json holds the chance level (overall and per kind), the items
scored per kind, the pretrained model's exact match per kind and the data's shape.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from stages.lib.atomic import write_json
from stages.lib.errors import run_stage
from stages.lib.evaluation.exact_match import (
    choose_items,
    exact_match_metrics,
    exact_match_report,
    score_answers,
    summary,
)
from stages.lib.model.checkpoint import RETRAIN, check_tokenizer, load_checkpoint
from stages.lib.params import SftParams, TrainParams, load_params
from stages.lib.runtime import resolve_device, resolve_precision
from stages.lib.tokens.chat import ChatFormat
from stages.lib.tokens.tokenizer_adapter import load_tokenizer
from stages.lib.training import distributed
from stages.lib.training.conversations import ConversationRows, files_digest, read_conversations, row_length
from stages.lib.training.trainer import Run, estimate_val_loss, fit

PARAM_SECTIONS = ["train", "sft"]
PRETRAINED = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
CHECKPOINT = Path("artifacts/checkpoints/sft.pt")
METRICS = Path("metrics/sft.json")
DETAILS = Path("reports/sft.json")  # the pretrained model per kind, conversation counts, row fill
LIVE_DIR = "dvclive/sft"


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    sp: SftParams = params["sft"]
    tp: TrainParams = sp.training(params["train"])
    if tp.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch_with_torchrun(tp.nproc, "stages.sft")

    pretrained, meta = load_checkpoint(PRETRAINED, "cpu")
    tok = load_tokenizer(TOKENIZER_DIR)
    check_tokenizer(meta, tok.fingerprint, TOKENIZER_DIR, RETRAIN)
    chat = ChatFormat(tok)
    cfg = pretrained.cfg
    train = read_conversations(sp.train_files, chat, cfg.block_size, sp.bad_records, "sft.train_files")
    val = read_conversations(sp.val_files, chat, cfg.block_size, sp.bad_records, "sft.val_files")
    row_len = row_length([len(ids) for ids, _ in train.encoded + val.encoded], cfg.block_size)
    train_rows = ConversationRows(train.encoded, row_len, tok.eot_id)
    val_rows = ConversationRows(val.encoded, row_len, tok.eot_id)
    every_row = list(range(val_rows.n_windows))
    items = choose_items(val.messages, val.kinds, train.messages, train.kinds, sp.eval_items)

    device = resolve_device(tp.device)
    dtype = resolve_precision(tp.precision, device)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # before fit() starts the process group
    if main_rank:
        print(f"sft: {len(train.encoded):,} train and {len(val.encoded):,} val conversations in rows of {row_len} "
              f"tokens ({train_rows.fill:.0%} filled), {train_rows.learned_tokens:,} assistant tokens to learn")
        pretrained.to(device)
        before_loss = estimate_val_loss(pretrained, val_rows, every_row, sp.batch_size, device, dtype)
        before = score_answers(pretrained, chat, tok.decode, items, sp.max_new_tokens, device, "pretrained")

    run = Run(name="sft", train_data=train_rows, val_data=val_rows, vocab_size=tok.vocab_size,
              tokenizer_fingerprint=tok.fingerprint,
              data_fingerprint={"pretrained": files_digest([str(PRETRAINED)]),
                                "train": files_digest(sp.train_files), "val": files_digest(sp.val_files)},
              checkpoint=CHECKPOINT, live_dir=LIVE_DIR, init_weights=pretrained.cpu().state_dict())
    trained = fit(cfg, tp, run, {"train": dataclasses.asdict(tp), "sft": dataclasses.asdict(sp)})
    if trained is None:  # not rank 0
        return

    tuned, _ = load_checkpoint(CHECKPOINT, device)
    after_loss = estimate_val_loss(tuned, val_rows, every_row, sp.batch_size, device, dtype)
    after = score_answers(tuned, chat, tok.decode, items, sp.max_new_tokens, device, "fine-tuned")
    # metrics/sft.json holds what a user compares across experiments (dvc exp show, dvc metrics diff);
    # the pretrained model's kinds and the data's shape go to reports/sft.json.
    metrics = {
        "pretrained_val_loss": round(before_loss, 4), "sft_val_loss": round(after_loss, 4),
        **exact_match_metrics(before, after),
        "tokens_per_sec": trained["tokens_per_sec"], "wall_time_s": trained["wall_time_s"],
        "best_step": trained["best_step"],
    }
    details = {
        **exact_match_report(after),
        **{f"pretrained_exact_match_{kind}": round(t.accuracy, 4) for kind, t in before.items()},
        "val_conversations": len(val.encoded), "scored_conversations": len(items.kinds),
        "train_conversations": len(train.encoded), "row_tokens": row_len, "row_fill": round(train_rows.fill, 4),
    }
    write_json(METRICS, metrics)
    write_json(DETAILS, details)
    print(f"sft: assistant-token val loss {before_loss:.4f} -> {after_loss:.4f}")
    for line in summary(before, after, items.open_ended):
        print(f"sft: {line}")


if __name__ == "__main__":
    run_stage(main)
