"""Faults a user can provoke: each is refused with one line naming the file or key, before any harm."""
from __future__ import annotations

import errno
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from stages import evaluate, generate
from stages.lib.atomic import write_json
from stages.lib.data.instructions import load_records
from stages.lib.data.shards import read_meta
from stages.lib.data.sources import SourceStats, find_input_files, read_file
from stages.lib.errors import EXIT_USER_ERROR, UserError, run_stage
from stages.lib.evaluation.scoring import Stream
from stages.lib.evaluation.task_format import load_task
from stages.lib.model.checkpoint import RETRAIN, check_tokenizer, load_checkpoint, save_checkpoint
from stages.lib.model.gpt import GPT
from stages.lib.params import MergeParams, ModelParams, load_params
from stages.lib.tokens.tokenizer_adapter import load_tokenizer, train_tokenizer
from stages.lib.training import memory, resume

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


# --------------------------------------------------------------------------- inputs a user supplies

def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_task_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "quiz.jsonl"
    path.write_bytes(b'{"query": "caf\xe9", "choices": ["a", "b"], "gold": 0}\n')
    with pytest.raises(UserError, match="task file .*quiz.jsonl is not UTF-8") as err:
        load_task(path)
    one_line(err)


def test_a_folder_among_the_instruction_files_names_it(tmp_path):
    (tmp_path / "chats").mkdir()
    with pytest.raises(UserError, match="chats: is a folder, not an instruction file") as err:
        load_records(tmp_path / "chats", "error")
    one_line(err)


@pytest.mark.parametrize("text", ["pack: 5\n", "pack: [a, b]\n"])
def test_a_section_that_is_not_a_mapping_is_refused_when_one_key_of_it_is_read(tmp_path, text):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(UserError, match="section pack must be a mapping"):
        load_params(["pack.seed"], tmp_path / "params.yaml")


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_is_one_line_naming_the_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "write_text", no_space)
    with pytest.raises(SystemExit) as exit_:
        run_stage(lambda: write_json(Path("metrics/clean.json"), {"documents": 1}))
    assert exit_.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err == "error: no space left on the device writing metrics/clean.json: free some space and rerun\n"
    assert not list((tmp_path / ".cache/tmp").iterdir())  # and no temporary file is left


def test_a_resume_state_that_cannot_be_saved_is_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "write_bytes", no_space)
    assert resume.save_state({"step": 3}, Path(".cache/train/resume.pt")) is False
    assert "could not save the resume state to .cache/train/resume.pt" in capsys.readouterr().out


# --------------------------------------------------------------------------- non-finite values

@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_floats_are_refused_at_load(tmp_path, value):
    (tmp_path / "params.yaml").write_text(f"train:\n  learning_rate: {value}\n")
    with pytest.raises(UserError, match=r"train\.learning_rate=.* must be a finite number"):
        load_params(["train"], tmp_path / "params.yaml")


def test_a_run_that_diverges_before_any_checkpoint_names_none(tmp_path, monkeypatch):
    """Starting weights that give a NaN loss at step 0: the stop message must not promise a checkpoint."""
    from stages.lib.params import TrainParams
    from stages.lib.training.trainer import Run, fit

    monkeypatch.chdir(tmp_path)
    data = TinyWindows()
    weights = {name: torch.full_like(p, math.nan) for name, p in GPT(TINY, 64).state_dict().items()}
    run = Run("train", data, data, 64, "test", {}, tmp_path / "model.pt", str(tmp_path / "live"), weights)
    tp = TrainParams(max_steps=2, batch_size=2, compile=False, device="cpu", precision="fp32")
    with pytest.raises(UserError, match="loss became nan at step 0") as err:
        fit(TINY, tp, run, {})
    assert "no checkpoint was written" in str(err.value) and "step -1" not in str(err.value)
    assert not (tmp_path / "model.pt").exists()


def test_training_goes_on_when_its_resume_state_cannot_be_saved(tmp_path, monkeypatch, capsys):
    from stages.lib.params import TrainParams
    from stages.lib.training.trainer import Run, fit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resume, "write_torch", no_space)
    data = TinyWindows()
    run = Run("train", data, data, 64, "test", {}, tmp_path / "model.pt", str(tmp_path / "live"))
    tp = TrainParams(max_steps=4, batch_size=2, checkpoint_interval=1, eval_interval=2, eval_batches=1,
                     compile=False, device="cpu", precision="fp32")
    metrics = fit(TINY, tp, run, {})
    assert metrics is not None and (tmp_path / "model.pt").exists()  # the run finished and wrote its model
    assert capsys.readouterr().out.count("could not save the resume state") == 3  # after steps 1, 2 and 3


class TinyWindows:
    """Random windows of TINY's block size over a 64-token vocabulary."""
    n_windows, n_tokens = 8, 8 * 32

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, 64, (len(indices), TINY.block_size + 1))
        return rows[:, :-1], rows[:, 1:]


# --------------------------------------------------------------------------- one line, and the right advice

class Payload:
    """What a malicious pickle holds: a call made as it loads."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


@pytest.mark.parametrize("content", ["malicious", "truncated"])
def test_a_foreign_or_damaged_checkpoint_is_one_line_without_torchs_advice(tiny, tmp_path, capsys, content):
    path = tmp_path / "model.pt"
    if content == "malicious":
        torch.save({"format_version": 1, "model": Payload()}, path)
    else:
        path.write_bytes((tiny[0] / "model.pt").read_bytes()[:3000])
    with pytest.raises(UserError, match="model.pt is not a checkpoint this project wrote") as err:
        load_checkpoint(path)
    assert "weights_only" not in one_line(err)
    assert "this ran" not in capsys.readouterr().out


def test_a_foreign_resume_state_starts_over_in_one_line(tmp_path, capsys):
    path = tmp_path / "resume.pt"
    torch.save({"run_key": "k", "model": Payload()}, path)
    assert resume.load_state("k", path) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not a state this project wrote" in out and "weights_only" not in out


def test_invalid_yaml_is_one_line_with_where(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  max_steps: 10\n learning_rate: [\n")
    with pytest.raises(UserError, match=r"params.yaml is not valid YAML: .* \(line 3, column 2\)") as err:
        load_params(["train"], tmp_path / "params.yaml")
    one_line(err)


# --------------------------------------------------------------------------- loadable but unexpected files

def test_a_resume_state_holding_a_list_starts_over(tmp_path, capsys):
    path = tmp_path / "resume.pt"
    torch.save([1, 2, 3], path)
    assert resume.load_state("k", path) is None
    assert "holds a list" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (lambda config: config.update(n_expert=4), "model_config keys this version does not know \\(n_expert\\)"),
    (lambda config: config.pop("n_head"), "has no model_config n_head"),
])
def test_a_checkpoint_from_another_version_says_so(tiny, tmp_path, change, message):
    state = torch.load(tiny[0] / "model.pt", weights_only=True)
    change(state["model_config"])
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(UserError, match=message) as err:
        load_checkpoint(tmp_path / "model.pt")
    assert "another version of this project" in one_line(err)


@pytest.mark.parametrize("text, message", [('{"vocab_size": 3', "is damaged"),
                                           ('{"vocab_size": 300}', "has no tokenizer_fingerprint"),
                                           ("[1, 2]", "has no vocab_size")])
def test_a_broken_shard_meta_names_the_file(tmp_path, text, message):
    (tmp_path / "meta.json").write_text(text)
    with pytest.raises(UserError, match=f"meta.json {message}") as err:
        read_meta(tmp_path / "meta.json", "vocab_size", "tokenizer_fingerprint")
    assert "pack" in one_line(err)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "tokenizer.json").write_text((d / "tokenizer.json").read_text()[:500]), "cannot be loaded"),
    (lambda d: (d / "meta.json").write_text('{"special_tokens": ["<|endoftext|>"]}'), "meta.json has no kind"),
    (lambda d: (d / "meta.json").write_text('{"kind": '), "meta.json is damaged"),
])
def test_a_damaged_tokenizer_names_the_file(tiny, tmp_path, damage, message):
    folder = tmp_path / "tokenizer"
    shutil.copytree(tiny[0] / "tokenizer", folder)
    damage(folder)
    with pytest.raises(UserError, match=message) as err:
        load_tokenizer(folder)
    assert "tokenizer stage" in one_line(err)


# --------------------------------------------------------------------------- minor

@pytest.mark.parametrize("content, message", [
    (b"train:\n  max_steps: 1\ntrain:\n  max_steps: 2\n", r"'train' is given twice \(line 3, column 1\)"),
    (b"train:\n  max_steps: 1\n  max_steps: 2\n", r"'max_steps' is given twice \(line 3, column 3\)"),
    (b"train:\n  device: caf\xe9\n", "is not UTF-8 text"),
])
def test_a_params_file_with_a_key_twice_or_not_utf8_is_one_line(tmp_path, content, message):
    (tmp_path / "params.yaml").write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        load_params(["train"], tmp_path / "params.yaml")
    one_line(err)


def test_stages_without_a_tokenizer_flag_do_not_suggest_one(tiny):
    with pytest.raises(UserError, match=r"retrain \(dvc repro\)") as err:
        check_tokenizer({"tokenizer_fingerprint": "other"}, tiny[1].fingerprint, "artifacts/tokenizer", RETRAIN)
    assert "--tokenizer" not in str(err.value)


def merge_files(folder: Path, **options) -> tuple[list, SourceStats]:
    stats, params = SourceStats(), MergeParams(**options)
    docs = []
    for path in find_input_files(folder, params.extensions, stats, params.bad_files):
        docs += list(read_file(path, path.name, params, stats))
    return docs, stats


def test_a_named_pipe_with_an_accepted_extension_is_named_not_dropped(tmp_path):
    (tmp_path / "a.txt").write_text("kept\n")
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(UserError, match="pipe.txt is not a regular file"):
        merge_files(tmp_path)
    docs, stats = merge_files(tmp_path, bad_files="skip")  # and never waits for a writer
    assert [d.text for d in docs] == ["kept\n"] and "not a regular file" in stats.files_skipped["pipe.txt"]


def test_a_symlink_loop_is_called_a_loop(tmp_path):
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    with pytest.raises(UserError, match="loop.txt is a loop of symbolic links"):
        merge_files(tmp_path)


def test_a_json_record_without_the_text_field_says_so(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"body": "two"}\n')
    with pytest.raises(UserError, match="no string field 'text'"):
        merge_files(tmp_path)


def test_tasks_without_a_validation_document_says_so(tmp_path, monkeypatch):
    from stages import tasks

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("pack:\n  val_fraction: 0.01\n")
    monkeypatch.setattr(tasks, "split_sources", lambda folder, seed, fraction: {"val": lambda: iter([])})
    with pytest.raises(UserError, match=r"no validation document in .*pack\.val_fraction=0\.01") as err:
        tasks.main()
    assert "context_lines" not in one_line(err)
