"""The training benchmark still runs end to end and prints consistent ratios.

Tiny shapes, eager: this checks the code path and the arithmetic of the printed figures, not the speed.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.lib.params import parse_section

pytestmark = pytest.mark.slow  # the bench scripts, each a run of its own

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


def test_learn_bench_preset_is_a_valid_recipe_that_later_overrides_refine():
    """bench/learn.py's @adamw-384 stands for a whole recipe of existing keys; what follows it wins."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import learn
    finally:
        sys.path.remove(str(ROOT / "bench"))

    overrides = learn.parse_overrides("@adamw-384 train.learning_rate=0.001")
    assert overrides["train.optimizer"] == "adamw" and overrides["train.learning_rate"] == 0.001
    params = learn.with_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    # parse_section refuses a key the dataclass lacks: a preset with a misspelt key fails here
    model, train = parse_section("model", params["model"]), parse_section("train", params["train"])
    assert (model.n_layer, model.n_embd, train.schedule) == (6, 384, "cosine")
    with pytest.raises(SystemExit, match="unknown preset '@nope'"):
        learn.parse_overrides("@nope")
