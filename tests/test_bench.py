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


def test_scale_bench_prints_driver_ratios_and_the_node_estimate_and_stops_its_ray():
    """bench/scale.py on a few thousand documents: every stage measured, the ratios and the 1 TB table
    consistent, and the Ray instance it started gone afterwards."""
    import psutil

    result = subprocess.run([sys.executable, "bench/scale.py", "--small", "1000", "--large", "3000", "--cpus", "2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout

    rows = re.findall(r"^\s*([\d,]+)\s+(merge|clean|tokenizer|pack)\s+([\d.]+)\s+(\d+)\s", out, re.M)
    assert [(docs, stage) for docs, stage, _, _ in rows] == [
        (docs, stage) for docs in ("1,000", "3,000") for stage in ("merge", "clean", "tokenizer", "pack")]
    assert all(float(wall) > 0 and int(peak) > 0 for _, _, wall, peak in rows)
    ratios = re.search(r"driver peak large/small: merge ([\d.]+)x, clean ([\d.]+)x, tokenizer ([\d.]+)x, "
                       r"pack ([\d.]+)x", out)
    assert ratios and all(float(r) > 0 for r in ratios.groups()), out
    assert percent(r"driver peak at most: (\d+) MB", out) == max(int(peak) for _, _, _, peak in rows)
    estimates = re.findall(r"^\s*(4|32|128)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, re.M)
    assert [int(nodes) for nodes, *_ in estimates] == [4, 32, 128], out
    for nodes, cores, ideal, estimate, ratio in estimates:
        assert int(cores) == 32 * int(nodes) and float(estimate) >= float(ideal) > 0
        assert float(ratio) == pytest.approx(float(estimate) / float(ideal), rel=0.05)

    ray_folder = re.search(r"Ray: one node, --num-cpus 2, (\S+);", out).group(1)
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if ray_folder in " ".join(p.info["cmdline"] or [])]
    assert not left, f"processes of the bench's Ray outlived it: {left}"
