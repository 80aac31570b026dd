"""The generation benchmark still runs end to end and prints consistent figures.

A tiny shape and a few tokens: this checks the code path and the printed arithmetic, not the speed.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the generate bench, a run of its own

ROOT = Path(__file__).resolve().parent.parent


def test_generate_bench_prints_tokens_per_second_first_token_and_speedup():
    result = subprocess.run(
        [sys.executable, "bench/generate.py", "--device", "cpu", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
         "--vocab", "256", "--block-sizes", "16", "32", "--new-tokens", "24", "--prompt-tokens", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"block_size\s+(\d+): cached\s+([\d.]+) tokens/s \(first token\s+([\d.]+) ms\) \| "
                      r"uncached\s+([\d.]+) tokens/s \(first token\s+([\d.]+) ms\) \| "
                      r"cached/uncached tokens per second: ([\d.]+)x \| same tokens (\d+)/24", result.stdout)
    assert [int(r[0]) for r in rows] == [16, 32], result.stdout
    for _, cached, ttft_cached, plain, ttft_plain, ratio, same in rows:
        assert float(cached) > 0 and float(plain) > 0 and float(ttft_cached) > 0 and float(ttft_plain) > 0
        assert abs(float(ratio) - float(cached) / float(plain)) <= 0.06 + 0.01 * float(ratio)  # printed rounded
        assert int(same) == 24  # greedy, fp32: the cache changes the speed, not the tokens
