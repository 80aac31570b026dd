"""Faults a user can provoke: each is refused with one line naming the file or key, before any harm."""
from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
import torch

from stages import evaluate, generate
from stages.lib.errors import UserError
from stages.lib.evaluation.scoring import Stream
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams
from stages.lib.tokens.tokenizer_adapter import train_tokenizer
from stages.lib.training import memory

TINY = ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, sample_text):
    """A tiny tokenizer and a random tiny model saved as a checkpoint that names it."""
    folder = tmp_path_factory.mktemp("faults")
    tok = train_tokenizer(iter(sample_text.split("\n\n")), folder / "tokenizer", "bpe", 320, 2,
                          ["<|endoftext|>"], True, 1337)
    torch.manual_seed(0)
    model = GPT(TINY, tok.vocab_size).eval()
    save_checkpoint(folder / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    return folder, tok, model


# --------------------------------------------------------------------------- memory preflight of inference

def test_a_huge_eval_batch_size_is_refused_before_scoring():
    model = GPT(ModelParams(), 8192)  # the default model, a long validation text
    streams = [Stream(np.zeros(10**8, dtype=np.uint16), 10**8, 0)]
    with pytest.raises(UserError, match=r"lower eval\.batch_size") as err:
        evaluate.check_batch_fits(model, 8192, streams, 100_000, torch.device("cpu"))
    assert "\n" not in str(err.value) and "eval.batch_size=100000" in str(err.value)
    evaluate.check_batch_fits(model, 8192, streams, 16, torch.device("cpu"))  # the default fits


def test_a_huge_eval_batch_size_over_little_text_still_runs():
    """The batches hold at most a stream's windows: 3 windows are 3 rows whatever batch_size says."""
    model = GPT(ModelParams(), 8192)
    streams = [Stream(np.zeros(3 * 256, dtype=np.uint16), 3 * 256, 0)]
    evaluate.check_batch_fits(model, 8192, streams, 100_000, torch.device("cpu"))


def test_generate_refuses_more_samples_than_memory_holds(tiny, capsys, monkeypatch):
    folder, _, _ = tiny
    monkeypatch.setattr(memory, "available_bytes", lambda device: 64 << 20)  # 64 MiB free
    flags = ["--checkpoint", str(folder / "model.pt"), "--tokenizer", str(folder / "tokenizer"), "--device", "cpu",
             "--max-new-tokens", "2"]
    with pytest.raises(UserError, match=r"--num-samples 20000 needs at least .* lower --num-samples"):
        generate.main([*flags, "--num-samples", "20000"])
    generate.main([*flags, "--num-samples", "2"])  # a few samples fit
    assert capsys.readouterr().out.count("--- sample") == 2


# --------------------------------------------------------------------------- no process outlives its stage

@pytest.mark.slow
def test_train_with_two_processes_dies_whole_when_the_stage_is_killed(tmp_path):
    """kill -9 of `python -m stages.train` with train.nproc 2: torchrun and both ranks end with it."""
    from test_train import start_train, write_params, write_shards

    write_shards(tmp_path / "data/shards")
    write_params(tmp_path, max_steps=100_000, nproc=2, checkpoint_interval=0)
    proc = start_train(tmp_path)
    stage = psutil.Process(proc.pid)
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while len(stage.children(recursive=True)) < 3:  # torchrun and its two ranks
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(2)  # the ranks are past their start-up
        family = stage.children(recursive=True)
        proc.kill()
        proc.wait(timeout=30)  # not communicate(): a surviving rank would hold its pipes open
        _, alive = psutil.wait_procs(family, timeout=20)
        assert alive == []
    finally:
        proc.kill()
        for child in family:  # never leave a rank behind, even when the test fails
            if child.is_running():
                child.kill()
