"""sft: fine-tune the pretrained model on instructions in the chat format.

The story: load the pretrained checkpoint and its tokenizer, read the instruction files (chat JSONL or
Alpaca JSON/JSONL), encode each conversation with the one chat template (stages/lib/tokens/chat.py) into a
padded row whose targets are the assistant's tokens alone, score the pretrained model on the held-out
conversations, fine-tune with the training loop pretraining uses (stages/lib/training/trainer.py: same
optimizer, schedule, precision, compile, resume, DDP/FSDP, divergence guard), and score the fine-tuned model
the same way. The best model goes to artifacts/checkpoints/sft.pt; metrics/sft.json holds, for both models,
the validation loss on assistant tokens and the exact-match accuracy of greedy answers, beside chance.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from stages.lib.atomic import write_json
from stages.lib.data.instructions import BadRecord, load_records, reject
from stages.lib.errors import UserError, run_stage
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.model.gpt import GPT
from stages.lib.params import SftParams, TrainParams, load_params
from stages.lib.tokens.chat import ChatFormat
from stages.lib.tokens.tokenizer_adapter import load_tokenizer
from stages.lib.training import distributed
from stages.lib.training.conversations import ConversationRows, row_length
from stages.lib.runtime import resolve_device, resolve_precision
from stages.lib.training.trainer import Run, estimate_val_loss, fit

PARAM_SECTIONS = ["train", "sft"]
PRETRAINED = Path("artifacts/checkpoints/model.pt")
TOKENIZER_DIR = Path("artifacts/tokenizer")
CHECKPOINT = Path("artifacts/checkpoints/sft.pt")
METRICS = Path("metrics/sft.json")
DETAILS = Path("reports/sft.json")  # per-kind accuracies, conversation counts, row fill
LIVE_DIR = "dvclive/sft"


@dataclasses.dataclass
class Conversations:
    messages: list[list[dict]]
    encoded: list[tuple[list[int], list[bool]]]
    kinds: list[str]  # a record's "kind" field (the shipped set has one per instruction kind), else "all"


def read_conversations(files: list[str], chat: ChatFormat, block_size: int, bad_records: str,
                       key: str) -> Conversations:
    """Every conversation of the files, encoded; one longer than the context is bad (an error, or skipped)."""
    out = Conversations([], [], [])
    for name in files:
        path = Path(name)
        records, counts = load_records(path, bad_records)
        skipped = Counter(counts["skipped"])
        for record in records:
            ids, learned = chat.encode_conversation(record.messages)
            if len(ids) > block_size + 1:
                reject(path, record.number, BadRecord("too_long", f"the conversation is {len(ids)} tokens, longer "
                                                      f"than the model's context of {block_size} + 1"),
                       bad_records, skipped)
                continue
            out.messages.append(record.messages)
            out.encoded.append((ids, learned))
            out.kinds.append(record.kind or "all")
        if skipped:
            print(f"sft: {path}: skipped {sum(skipped.values())} records ({dict(skipped)})")
    if not out.encoded:
        raise UserError(f"{key} ({', '.join(files)}) holds no usable conversation: add some")
    return out


def answers_right(model: GPT, chat: ChatFormat, decode, conversations: list[list[dict]], max_new_tokens: int,
                  device: torch.device, label: str) -> list[bool]:
    """Whether the model reproduces each conversation's last assistant turn exactly (greedy, stripped)."""
    right = []
    for messages in tqdm(conversations, desc=f"sft: answers ({label})", unit="conv", leave=False):
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = torch.tensor([chat.encode_prompt(messages[:last])], device=device)
        out = generate(model, prompt, max_new_tokens, Sampling(temperature=0.0), stop_token=chat.end_id)
        ids = [t for t in out.ids[0] if t not in (chat.end_id, chat.eot_id)]
        right.append(decode(ids).strip() == messages[last]["content"].strip())
    return right


def score(model: GPT, rows: ConversationRows, chat: ChatFormat, decode, val: Conversations, n_scored: int,
          sp: SftParams, device: torch.device, dtype: torch.dtype, label: str) -> dict:
    """Validation loss on assistant tokens, and exact-match accuracy overall and per kind."""
    every_row = list(range(rows.n_windows))
    loss = estimate_val_loss(model, rows, every_row, sp.batch_size, device, dtype)
    model.eval()  # estimate_val_loss leaves it in training mode
    right = answers_right(model, chat, decode, val.messages[:n_scored], sp.max_new_tokens, device, label)
    by_kind: dict[str, list[bool]] = {}
    for kind, ok in zip(val.kinds, right):
        by_kind.setdefault(kind, []).append(ok)
    return {"val_loss": round(loss, 4), "accuracy": round(sum(right) / len(right), 4),
            **{f"accuracy_{kind}": round(sum(oks) / len(oks), 4) for kind, oks in sorted(by_kind.items())
               if kind != "all"}}


def chance_accuracy(conversations: list[list[dict]]) -> float:
    """What guessing reaches: 1/n for an answer that is one of n lettered options, 0 for free answers."""
    total = 0.0
    for messages in conversations:
        answer = [m for m in messages if m["role"] == "assistant"][-1]["content"].strip()
        question = [m for m in messages if m["role"] == "user"][-1]["content"]
        options = [line for line in question.splitlines() if re.match(r"[A-Z]\. ", line)]
        if len(answer) == 1 and options:
            total += 1 / len(options)
    return total / len(conversations)


def files_digest(files: list[str]) -> str:
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + Path(name).read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    sp: SftParams = params["sft"]
    tp: TrainParams = sp.training(params["train"])
    if tp.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch_with_torchrun(tp.nproc, "stages.sft")

    pretrained, meta = load_checkpoint(PRETRAINED, "cpu")
    tok = load_tokenizer(TOKENIZER_DIR)
    check_tokenizer(meta, tok.fingerprint, TOKENIZER_DIR)
    chat = ChatFormat(tok)
    cfg = pretrained.cfg
    train = read_conversations(sp.train_files, chat, cfg.block_size, sp.bad_records, "sft.train_files")
    val = read_conversations(sp.val_files, chat, cfg.block_size, sp.bad_records, "sft.val_files")
    row_len = row_length([len(ids) for ids, _ in train.encoded + val.encoded], cfg.block_size)
    train_rows = ConversationRows(train.encoded, row_len, tok.eot_id)
    val_rows = ConversationRows(val.encoded, row_len, tok.eot_id)
    n_scored = min(sp.eval_items or len(val.messages), len(val.messages))

    device = resolve_device(tp.device)
    dtype = resolve_precision(tp.precision, device)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # before fit() starts the process group
    before = None
    if main_rank:
        print(f"sft: {len(train.encoded):,} train and {len(val.encoded):,} val conversations in rows of {row_len} "
              f"tokens ({train_rows.fill:.0%} filled), {train_rows.learned_tokens:,} assistant tokens to learn")
        before = score(pretrained.to(device), val_rows, chat, tok.decode, val, n_scored, sp, device, dtype,
                       "pretrained")

    run = Run(name="sft", train_data=train_rows, val_data=val_rows, vocab_size=tok.vocab_size,
              tokenizer_fingerprint=tok.fingerprint,
              data_fingerprint={"pretrained": files_digest([str(PRETRAINED)]),
                                "train": files_digest(sp.train_files), "val": files_digest(sp.val_files)},
              checkpoint=CHECKPOINT, live_dir=LIVE_DIR, init_weights=pretrained.cpu().state_dict())
    trained = fit(cfg, tp, run, {"train": dataclasses.asdict(tp), "sft": dataclasses.asdict(sp)})
    if trained is None:  # not rank 0
        return

    tuned, _ = load_checkpoint(CHECKPOINT, device)
    after = score(tuned, val_rows, chat, tok.decode, val, n_scored, sp, device, dtype, "fine-tuned")
    # metrics/sft.json holds what a user compares across experiments (dvc exp show, dvc metrics diff);
    # the per-kind accuracies and the data's shape go to reports/sft.json.
    headline = ("val_loss", "accuracy")
    metrics = {
        **{f"pretrained_{name}": before[name] for name in headline},
        **{f"sft_{name}": after[name] for name in headline},
        "chance_accuracy": round(chance_accuracy(val.messages[:n_scored]), 4),
        "tokens_per_sec": trained["tokens_per_sec"], "wall_time_s": trained["wall_time_s"],
        "best_step": trained["best_step"],
    }
    details = {
        **{f"pretrained_{name}": value for name, value in before.items() if name not in headline},
        **{f"sft_{name}": value for name, value in after.items() if name not in headline},
        "val_conversations": len(val.encoded), "scored_conversations": n_scored,
        "train_conversations": len(train.encoded), "row_tokens": row_len, "row_fill": round(train_rows.fill, 4),
    }
    write_json(METRICS, metrics)
    write_json(DETAILS, details)
    print(f"sft: assistant-token val loss {before['val_loss']:.4f} -> {after['val_loss']:.4f}; exact-match "
          f"accuracy {before['accuracy']:.1%} -> {after['accuracy']:.1%} (chance {metrics['chance_accuracy']:.1%})")


if __name__ == "__main__":
    run_stage(main)
