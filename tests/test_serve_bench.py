"""bench/serve.py still runs end to end against a real server and prints consistent figures.

A tiny random model, a few short requests: this checks the code path and the arithmetic, not the speed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.gpt import GPT
from stages.lib.params import ModelParams, TokenizerParams
from stages.lib.tokens.tokenizer_adapter import train_tokenizer

pytestmark = pytest.mark.slow  # a server and a bench, each a process of its own

ROOT = Path(__file__).resolve().parent.parent


def test_serve_bench_prints_rates_ratios_and_memory(tmp_path, sample_text):
    tok = train_tokenizer(iter(sample_text.split("\n\n")), tmp_path / "tokenizer", "bpe", 400, 2,
                          TokenizerParams().special_tokens, True, 1337)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=64), tok.vocab_size)
    save_checkpoint(tmp_path / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    result = subprocess.run([sys.executable, "bench/serve.py", "--checkpoint", str(tmp_path / "model.pt"),
                             "--tokenizer", str(tmp_path / "tokenizer"), "--streams", "1", "4", "--requests", "4",
                             "--new-tokens", "8"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    baselines = [float(x) for x in re.findall(r"in process \(decoding\.generate\):\s+([\d.]+) tokens/s", out)]
    levels = re.findall(r"server,\s+(\d+) concurrent streams:\s+([\d.]+) tokens/s aggregate \(\s*([\d.]+)x the "
                        r"stream above\), first token p50\s+([\d.]+) ms, p95\s+([\d.]+) ms \((\d+) requests", out)
    assert [int(level[0]) for level in levels] == [1, 4] and len(baselines) == 2, out
    for base, (_, rate, ratio, p50, p95, requests) in zip(baselines, levels):
        assert float(ratio) == pytest.approx(float(rate) / base, abs=0.06)
        assert 0 < float(p50) <= float(p95) and int(requests) == 4
    memory = re.search(r"idle (\d+) MB, peak under load (\d+) MB, after (\d+) MB; rows still decoding after: 0", out)
    assert memory and 0 < int(memory[1]) <= int(memory[2]), out
