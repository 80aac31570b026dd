"""Resume state for an interrupted training run.

DVC deletes a stage's outputs before it reruns it, so the state lives outside
them, in the git-ignored `.cache/train/resume.pt`: model, optimizer and scaler
state, the next step, RNG state, the best checkpoint so far and the logged
history. It is saved atomically every train.checkpoint_interval steps and on
Ctrl-C / SIGTERM, and keyed by a fingerprint of the params, the shards and the
code, so a rerun with the same params, data and code continues where it stopped
and any other run refuses it. Everything in it is tensors and primitives: it loads with
`weights_only=True`.
"""
from __future__ import annotations

import hashlib
import json
import signal
import sys
from pathlib import Path

import torch

from stages.lib.model.checkpoint import write_torch

STATE_FILE = Path(".cache/train/resume.pt")


def code_fingerprint() -> str:
    """sha256 over the source of this project's modules loaded now (the train stage and what it imports).

    After a code change DVC reruns train, and the state of the old code's run must not be continued: its
    parameters may not even load into the new model.
    """
    sources = {}
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)  # `python -m stages.train` is __main__, named by its spec
        if spec is not None and spec.name.split(".")[0] == "stages" and str(spec.origin).endswith(".py"):
            sources[spec.name] = Path(spec.origin)
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\0".encode() + sources[name].read_bytes())
    return digest.hexdigest()[:16]


def run_key(params: dict, shard_meta: dict) -> str:
    """Fingerprint of everything that decides the weights: params, the data and the code."""
    blob = json.dumps({"params": params, "data": shard_meta, "code": code_fingerprint()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_state(state: dict, path: Path = STATE_FILE) -> bool:
    """Whether the state was saved. A failed save (a full disk) only costs the chance to resume from here:
    it is a warning, training goes on, and the state saved before, if any, stays."""
    try:
        write_torch(path, state)
    except OSError as err:
        print(f"train: warning: could not save the resume state to {path} ({err.strerror}); training goes on")
        return False
    return True


def load_state(key: str, path: Path = STATE_FILE) -> dict | None:
    """The saved state for this run, or None (with a message when a state for another run is refused)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file: start over rather than fail (never with weights_only=False)
        print(f"train: ignoring resume state {path}: it is not a state this project wrote; starting from step 0")
        return None
    if not isinstance(state, dict):  # loadable, but not what save_state writes: start over as for a damaged one
        print(f"train: ignoring resume state {path}: it holds a {type(state).__name__}, not a state this project "
              f"wrote; starting from step 0")
        return None
    if state.get("run_key") != key:
        print(f"train: refusing resume state {path}: it was saved by a run with other params, data or code "
              f"(key {state.get('run_key')}, this run {key}); starting from step 0")
        return None
    return state


def clear_state(path: Path = STATE_FILE) -> None:
    path.unlink(missing_ok=True)


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step, so state is saved whole."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self) -> "StopSignal":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
