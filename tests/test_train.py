"""The train stage as a user runs it: resume after interruption (AdamW and Muon), refusal of foreign state,
divergence, DDP, FSDP."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stages.lib.data.shards import ShardWriter
from stages.lib.errors import EXIT_USER_ERROR
from stages.lib.model.checkpoint import load_checkpoint
from stages.lib.model.gpt import GPT
from stages.lib.params import SECTIONS

pytestmark = pytest.mark.slow  # training runs as subprocesses, several with two processes

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 300
STATE = Path(".cache/train/resume.pt")


def write_shards(directory: Path, seed: int = 0) -> None:
    """A learnable token stream: noisy repetitions of a fixed phrase, split into documents."""
    rng = np.random.default_rng(seed)
    phrase = rng.integers(1, VOCAB, size=50)
    directory.mkdir(parents=True)
    for split, n_docs in (("train", 40), ("val", 6)):
        writer = ShardWriter(directory, split, VOCAB, shard_tokens=4000)
        docs = []
        for _ in range(n_docs):
            doc = np.tile(phrase, 4).copy()
            noise = rng.random(len(doc)) < 0.1
            doc[noise] = rng.integers(1, VOCAB, size=int(noise.sum()))
            docs.append(np.append(doc, 0))
        writer.write_documents(np.concatenate(docs), np.array([len(d) for d in docs]))
        writer.close()
    meta = {"vocab_size": VOCAB, "tokenizer_fingerprint": "test", "eot_id": 0}
    (directory / "meta.json").write_text(json.dumps(meta))


def write_params(project: Path, **train) -> None:
    params = {name: {} for name in SECTIONS}
    params["model"] = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.1}
    params["train"] = {"max_steps": 40, "batch_size": 4, "warmup_steps": 4, "eval_interval": 10,
                       "eval_batches": 2, "checkpoint_interval": 3, "precision": "fp32", "device": "cpu",
                       "compile": False, **train}
    (project / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def project(tmp_path) -> Path:
    write_shards(tmp_path / "data/shards")
    write_params(tmp_path)
    return tmp_path


def start_train(project: Path, code: Path = ROOT) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.Popen([sys.executable, "-m", "stages.train"], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_train(project: Path, expect_rc: int = 0, code: Path = ROOT) -> str:
    proc = start_train(project, code)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the relauncher passes it on to torchrun, so no rank outlives the test
        proc.communicate(timeout=60)
        raise
    assert proc.returncode == expect_rc, f"rc {proc.returncode}:\n{out}\n{err[-3000:]}"
    return out + err


def interrupt_when_state_saved(project: Path, sig: int) -> str:
    proc = start_train(project)
    deadline = time.time() + 120
    while not (project / STATE).exists():
        assert proc.poll() is None, "training ended before it saved any resume state"
        assert time.time() < deadline, "no resume state after 120 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the run finished before the signal arrived: make it longer"
    return out + err


def checkpoint_weights(project: Path) -> dict:
    return torch.load(project / "artifacts/checkpoints/model.pt", weights_only=True)


def assert_same_run(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] and a["val_loss"] == b["val_loss"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, dict]:
    project = tmp_path_factory.mktemp("straight")
    write_shards(project / "data/shards")
    write_params(project)
    run_train(project)
    assert not (project / STATE).exists(), "a finished run must remove its resume state"
    return checkpoint_weights(project), json.loads((project / "metrics/train.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_resumed_run_matches_uninterrupted_run(project, uninterrupted, sig):
    log = interrupt_when_state_saved(project, sig)
    if sig == signal.SIGTERM:
        assert "interrupted after step" in log and "rerun `dvc repro`" in log
    assert (project / STATE).exists()
    log = run_train(project)
    assert "resuming from step" in log
    assert_same_run(checkpoint_weights(project), uninterrupted[0])
    metrics = json.loads((project / "metrics/train.json").read_text())
    assert metrics["final_train_loss"] == uninterrupted[1]["final_train_loss"]
    assert metrics["best_val_loss"] == uninterrupted[1]["best_val_loss"]
    # The dvclive history was logged again, from step 0.
    rows = (project / "dvclive/train/plots/metrics/val_loss.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["0", "10", "20", "30", "39"]


def test_muon_run_interrupted_and_resumed_matches_an_uninterrupted_one(tmp_path):
    """Both optimizers' states (Muon's momentum, AdamW's moments) go through the resume state; under bf16
    autocast and gradient accumulation."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for project in (straight, resumed):
        write_shards(project / "data/shards")
        write_params(project, optimizer="muon", precision="bf16", batch_size=2, grad_accum_steps=2, max_steps=16,
                     eval_interval=5)
    run_train(straight)
    interrupt_when_state_saved(resumed, signal.SIGTERM)
    log = run_train(resumed)
    assert "resuming from step" in log
    assert_same_run(checkpoint_weights(resumed), checkpoint_weights(straight))


def test_state_of_another_run_is_refused(project):
    interrupt_when_state_saved(project, signal.SIGTERM)
    write_params(project, learning_rate=1.0e-3)
    log = run_train(project)
    assert "refusing resume state" in log
    assert "resuming" not in log


def test_state_of_another_version_of_the_code_is_refused(project, tmp_path):
    """Changed code reruns train under DVC: the old code's state may not even load into the new model."""
    interrupt_when_state_saved(project, signal.SIGTERM)
    code = tmp_path / "edited"
    shutil.copytree(ROOT / "stages", code / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    model_py = code / "stages/lib/model/gpt.py"
    model_py.write_text(model_py.read_text().replace("class MLP(nn.Module):", "class MLP(nn.Module):  # edited"))
    log = run_train(project, code=code)
    assert "refusing resume state" in log and "other params, data or code" in log
    assert "resuming" not in log


def test_divergence_stops_with_a_clear_error(project):
    write_params(project, learning_rate=1.0e4, grad_clip=0.0, warmup_steps=0, checkpoint_interval=0)
    log = run_train(project, expect_rc=2)
    assert "error: train loss became" in log and "train.learning_rate" in log
    assert "Traceback" not in log


def test_a_config_that_cannot_fit_is_refused_before_allocating(project):
    # Terabytes of weights and optimizer state: no machine running this suite has them, and the refusal comes
    # before the model is built (it would take minutes and be killed by the kernel).
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"].update(n_layer=48, n_head=128, n_embd=16384)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    err = run_train(project, expect_rc=EXIT_USER_ERROR)
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "model.n_embd=16384" in line and "train.batch_size=4" in line
    assert "weights and optimizer" in line and "GiB free" in line


def test_a_run_shorter_than_its_warmup_warms_up_over_a_tenth(project):
    write_params(project, max_steps=20, warmup_steps=50, eval_interval=10)
    out = run_train(project)
    assert "warming up over 2 steps" in out


def test_too_small_data_for_block_size(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["block_size"] = 4096
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    log = run_train(project, expect_rc=2)
    assert "model.block_size" in log and "Traceback" not in log


def run_global_batch_of_8(project: Path, nproc: int, **train) -> dict:
    """8 steps over global batches of 8 windows, without dropout (its masks differ per rank); the checkpoint."""
    write_shards(project / "data/shards")
    accum = train.pop("grad_accum_steps", 1)
    write_params(project, max_steps=8, eval_interval=4, batch_size=8 // nproc // accum, grad_accum_steps=accum,
                 nproc=nproc, **train)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["dropout"] = 0.0
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    run_train(project)
    return checkpoint_weights(project)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The one-process run for given settings, run once for every test that compares with it."""
    runs = {}

    def run(**train) -> dict:
        key = json.dumps(train, sort_keys=True)
        if key not in runs:
            runs[key] = run_global_batch_of_8(tmp_path_factory.mktemp("single"), 1, **train)
        return runs[key]
    return run


@pytest.mark.parametrize("strategy, compiled, optimizer", [("ddp", False, "adamw"), ("fsdp", False, "adamw"),
                                                            ("ddp", True, "adamw"), ("ddp", False, "muon"),
                                                            ("fsdp", False, "muon")])
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, one_process, strategy, compiled,
                                                                    optimizer):
    """nproc=2 relaunches under torchrun (gloo); ranks read disjoint halves of the same global batch.
    Compiled, DDP runs inside torch.compile, with gradient accumulation (no_sync on the first micro-batch).
    Muon orthogonalizes in bf16 (torch.optim.Muon), where the ranks' rounding of the same averaged gradient
    differs from one process's by an ulp here and there: about 1.5% of a matrix's norm after 8 steps here. An
    orthogonalization of each rank's shard of a matrix instead of the whole would be off by a third or more."""
    train = {"compile": compiled, "grad_accum_steps": 2 if compiled else 1, "optimizer": optimizer}
    a = one_process(**train)
    b = run_global_batch_of_8(tmp_path, 2, strategy=strategy, **train)
    assert a["step"] == b["step"]
    for name, tensor in a["model"].items():
        if optimizer == "muon":
            assert (tensor - b["model"][name]).norm() < 0.05 * tensor.norm(), name
        else:
            assert torch.allclose(tensor, b["model"][name], atol=1e-5), name
    assert len((tmp_path / "dvclive/train/plots/metrics/val_loss.tsv").read_text().splitlines()) == 4  # rank 0 only
    # The checkpoint is the ordinary, whole-model format whatever the strategy.
    model, meta = load_checkpoint(tmp_path / "artifacts/checkpoints/model.pt")
    assert type(model) is GPT and meta["step"] == b["step"]


def test_fsdp_in_bf16_gathers_low_precision_blocks_and_stays_close_to_ddp(tmp_path):
    """Under bf16 FSDP gathers the blocks' weights in bf16 (autocast would round them so anyway); the run
    stays as close to DDP's as bf16 rounding allows (either differs from one process by about 1e-3 here)
    and the checkpoint holds the fp32 weights. AdamW at 2e-3: Muon's normalized steps at the default lr carry
    the rounding further (Muon under FSDP: test_two_processes_match_one_process_with_the_same_global_batch)."""
    runs = {}
    for strategy in ("ddp", "fsdp"):
        project = tmp_path / strategy
        write_shards(project / "data/shards")
        write_params(project, max_steps=8, eval_interval=4, precision="bf16", nproc=2, strategy=strategy,
                     optimizer="adamw", learning_rate=2e-3)
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["model"]["dropout"] = 0.0
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        run_train(project)
        runs[strategy] = checkpoint_weights(project)
    assert abs(runs["ddp"]["val_loss"] - runs["fsdp"]["val_loss"]) < 1e-3
    for name, tensor in runs["ddp"]["model"].items():
        assert runs["fsdp"]["model"][name].dtype == torch.float32, name
        assert torch.allclose(tensor, runs["fsdp"]["model"][name], atol=2e-3), name


def test_fsdp_run_interrupted_and_resumed_matches_an_uninterrupted_one(tmp_path):
    """The resume state holds whole (gathered) model and optimizer states; each rank reloads its shard."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for project in (straight, resumed):
        write_shards(project / "data/shards")
        write_params(project, max_steps=30, nproc=2, strategy="fsdp")
    run_train(straight)
    log = interrupt_when_state_saved(resumed, signal.SIGTERM)  # the relauncher passes it on to every rank
    assert "interrupted after step" in log
    log = run_train(resumed)
    assert "resuming from step" in log
    assert_same_run(checkpoint_weights(resumed), checkpoint_weights(straight))


def test_same_params_and_data_give_the_same_checkpoint_bytes(project):
    """The default path (compiled, mixed precision) is reproducible, so DVC's cache means something."""
    write_params(project, compile=True, precision="auto", max_steps=4, warmup_steps=1, eval_interval=2,
                 checkpoint_interval=0)
    run_train(project)
    first = (project / "artifacts/checkpoints/model.pt").read_bytes()
    run_train(project)
    assert (project / "artifacts/checkpoints/model.pt").read_bytes() == first
