"""train: fit the GPT in stages/lib/model/gpt.py to the token shards.

The story: read model.* and train.* params, open the shards as windows of block_size + 1 tokens, and hand
them to the training loop shared with fine-tuning (stages/lib/training/trainer.py: AdamW, the schedule,
autocast, validation, the best checkpoint, resume, DDP/FSDP under torchrun). The best model goes to
artifacts/checkpoints/model.pt; metrics/train.json holds the final and best losses, tokens per second and
wall time; dvclive/train the curves.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from stages.lib.atomic import write_json
from stages.lib.data.shards import META_FILE, read_meta
from stages.lib.errors import run_stage
from stages.lib.params import ModelParams, TrainParams, load_params
from stages.lib.training import distributed
from stages.lib.training.batches import TokenWindows
from stages.lib.training.trainer import Run, fit

PARAM_SECTIONS = ["model", "train"]
SHARD_DIR = Path("data/shards")
CHECKPOINT = Path("artifacts/checkpoints/model.pt")
METRICS = Path("metrics/train.json")
LIVE_DIR = "dvclive/train"


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    cfg: ModelParams = params["model"]
    tp: TrainParams = params["train"]
    if tp.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch_with_torchrun(tp.nproc, "stages.train")

    # Data: the token stream viewed as windows of block_size + 1.
    meta = read_meta(SHARD_DIR / META_FILE, "vocab_size", "tokenizer_fingerprint")
    run = Run(name="train",
              train_data=TokenWindows.from_split(SHARD_DIR, "train", cfg.block_size),
              val_data=TokenWindows.from_split(SHARD_DIR, "val", cfg.block_size),
              vocab_size=meta["vocab_size"], tokenizer_fingerprint=meta["tokenizer_fingerprint"],
              data_fingerprint=meta, checkpoint=CHECKPOINT, live_dir=LIVE_DIR)
    metrics = fit(cfg, tp, run, {"model": dataclasses.asdict(cfg), "train": dataclasses.asdict(tp)})
    if metrics is not None:  # rank 0
        write_json(METRICS, metrics)


if __name__ == "__main__":
    run_stage(main)
