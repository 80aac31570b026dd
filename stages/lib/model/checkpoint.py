"""Checkpoints: weights plus what is needed to rebuild and trust them.

A checkpoint is a plain dict of tensors and primitives, so it loads with
`torch.load(..., weights_only=True)`: no pickled code runs on load.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import torch

from stages.lib.atomic import atomic_path
from stages.lib.errors import UserError
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams

FORMAT_VERSION = 1
RETRAIN = "retrain (dvc repro)"  # the fix for a stage that reads the project's own tokenizer, with no flag to pick one


def save_checkpoint(path: str | Path, model: GPT, tokenizer_fingerprint: str, step: int, val_loss: float,
                    weights: dict[str, torch.Tensor] | None = None) -> None:
    """Save `weights` (default: the model's own) with the model's config: one format for any strategy."""
    state = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict() if weights is None else weights,
        "model_config": dataclasses.asdict(model.cfg),
        "vocab_size": model.vocab_size,
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "step": step,
        "val_loss": val_loss,
    }
    write_torch(path, state)


def write_torch(path: str | Path, obj) -> None:
    """torch.save, atomically and byte-reproducibly.

    Saving straight to a file names the archive after the (temporary) file, so
    identical weights would give different bytes; through a buffer they don't,
    and DVC's hash of the checkpoint depends on the weights alone.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[GPT, dict]:
    """The model (in eval mode, on device) and the checkpoint's metadata."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} not found: run the train stage first (dvc repro)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for a damaged or foreign file
        # Not torch's message: it suggests weights_only=False, which would run whatever code the file holds.
        raise UserError(f"{path} is not a checkpoint this project wrote (damaged, or holding more than tensors "
                        f"and plain values): retrain with dvc repro") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a checkpoint of format version {FORMAT_VERSION}: retrain with dvc repro")
    model = GPT(model_config(state, path), state["vocab_size"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise UserError(f"{path} does not match this version's model ({first}): retrain with dvc repro") from None
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k != "model"}
    return model, meta


def model_config(state: dict, path: Path) -> ModelParams:
    """The checkpoint's model params, refused in one line when another version of the code wrote them."""
    other = f"written by another version of this project (format version {FORMAT_VERSION} too): retrain with " \
            f"dvc repro, or load it with the code that wrote it"
    missing = [key for key in ("model", "model_config", "vocab_size", "tokenizer_fingerprint", "step")
               if key not in state]
    if missing or not isinstance(state["model_config"], dict):
        raise UserError(f"{path} lacks {missing[0] if missing else 'a model_config mapping'}: {other}")
    config, names = state["model_config"], [f.name for f in dataclasses.fields(ModelParams)]
    extra, lacking = sorted(set(config) - set(names)), [name for name in names if name not in config]
    if extra:
        raise UserError(f"{path} has model_config keys this version does not know ({', '.join(extra)}): {other}")
    if lacking:
        raise UserError(f"{path} has no model_config {', '.join(lacking)}: {other}")
    return ModelParams(**config)


def check_tokenizer(meta: dict, fingerprint: str, tokenizer_dir: str | Path,
                    fix: str = "pass the matching --tokenizer or retrain") -> None:
    """`fix`: what the user can do about a mismatch (a stage without a --tokenizer flag says so)."""
    if meta["tokenizer_fingerprint"] != fingerprint:
        raise UserError(f"the checkpoint was trained with tokenizer {meta['tokenizer_fingerprint']}, but "
                        f"{tokenizer_dir} holds {fingerprint}: {fix}")
