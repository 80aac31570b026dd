"""The training benchmark still runs end to end and prints consistent ratios.

Tiny shapes, eager: this checks the code path and the arithmetic of the printed figures, not the speed.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percent(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in bench output:\n{text}"
    return float(match.group(1))


def test_train_bench_prints_mfu_matmul_share_and_speedup():
    result = subprocess.run(
        [sys.executable, "bench/train.py", "--device", "cpu", "--batch", "1", "--steps", "2", "--vocab", "256",
         "--no-compile", "--matmul-share"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout

    mfu = percent(r"ours .*MFU ([\d.]+)%", out)
    share = percent(r"matmuls\s+(\d+)% of step time", out)
    mfu_if_only_matmuls = percent(r"MFU ([\d.]+)% if nothing else took time", out)
    speedup = float(re.search(r"tokens per second: ([\d.]+)x", out).group(1))

    assert 0 < mfu < 100
    assert 0 < share <= 100
    # All counted FLOPs are matmul FLOPs: the step cannot beat its matmuls alone.
    assert mfu_if_only_matmuls >= mfu
    assert speedup > 0
