"""python -m stages.generate: streams the same text the decoding loop returns, reads prompts, checks its flags."""
from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stages import generate as cli
from stages.lib.errors import UserError
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.model.gpt import GPT
from stages.lib.model.text_stream import TextStream, printable_end
from stages.lib.params import ModelParams
from stages.lib.tokens.tokenizer_adapter import train_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_text):
    """A tiny byte-level BPE tokenizer and a random tiny model saved as a checkpoint that names it."""
    folder = tmp_path_factory.mktemp("generate")
    tok = train_tokenizer(iter(sample_text.split("\n\n")), folder / "tokenizer", "bpe", 320, 2,
                          ["<|endoftext|>"], True, 1337)
    torch.manual_seed(0)
    model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=32), tok.vocab_size).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    save_checkpoint(folder / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    return folder, tok, model


def run(trained, *flags: str, capsys, stdin: str | None = None, monkeypatch=None) -> str:
    folder = trained[0]
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    cli.main(["--checkpoint", str(folder / "model.pt"), "--tokenizer", str(folder / "tokenizer"),
              "--device", "cpu", *flags])
    return capsys.readouterr().out


def test_streamed_text_is_the_prompt_and_the_decoding_loops_text(trained, capsys):
    _, tok, model = trained
    out = run(trained, "--prompt", "HAMLET.", "--temperature", "0", "--max-new-tokens", "40", capsys=capsys)
    ids = tok.encode("HAMLET.")
    expected = generate(model, torch.tensor([ids]), 40, Sampling(temperature=0), stop_token=tok.eot_id,
                        decode=tok.decode)
    assert out == "HAMLET." + expected.texts[0] + "\n"
    assert len(expected.texts[0]) > 10


def test_prompt_from_a_file_and_from_stdin(trained, capsys, tmp_path, monkeypatch):
    flags = ["--temperature", "0", "--max-new-tokens", "10"]
    direct = run(trained, "--prompt", "To be, or not", *flags, capsys=capsys)
    (tmp_path / "prompt.txt").write_text("To be, or not", encoding="utf-8")
    assert run(trained, "--prompt-file", str(tmp_path / "prompt.txt"), *flags, capsys=capsys) == direct
    assert run(trained, "--prompt", "-", *flags, capsys=capsys, stdin="To be, or not",
               monkeypatch=monkeypatch) == direct


def test_stop_strings_cut_the_output(trained, capsys):
    flags = ["--prompt", "HAMLET.", "--temperature", "0", "--max-new-tokens", "40"]
    full = run(trained, *flags, capsys=capsys)[len("HAMLET."):-1]
    stop = full[5:7]
    out = run(trained, *flags, "--stop", "never there", "--stop", stop, capsys=capsys)
    assert out == "HAMLET." + full[:full.find(stop)] + "\n"


def test_several_samples_in_one_batch_reproduce_with_their_seed(trained, capsys):
    flags = ["--prompt", "KING.", "--num-samples", "3", "--max-new-tokens", "20", "--temperature", "1"]
    out = run(trained, *flags, "--top-p", "0.9", "--repetition-penalty", "1.2", capsys=capsys)
    assert out.count("--- sample") == 3 and out.count("KING.") == 3
    assert run(trained, *flags, "--top-p", "0.9", "--repetition-penalty", "1.2", capsys=capsys) == out
    assert run(trained, *flags, "--top-p", "0.9", "--repetition-penalty", "1.2", "--seed", "2",
               capsys=capsys) != out


@pytest.mark.parametrize("flags, message", [
    (["--top-p", "0"], "--top-p=0.0 must be in (0, 1]"),
    (["--temperature", "-1"], "--temperature=-1.0 must be >= 0"),
    (["--top-k", "-1"], "--top-k=-1 must be >= 0"),
    (["--repetition-penalty", "0"], "--repetition-penalty=0.0 must be > 0"),
    (["--max-new-tokens", "-5"], "--max-new-tokens=-5 must be >= 0"),
    (["--seed", "-1"], "--seed=-1 must be in 0 .. 2**32 - 1"),
    (["--stop", ""], "--stop '' is empty"),
    (["--prompt-file", "/no/such/prompt.txt"], "--prompt-file /no/such/prompt.txt not found"),
])
def test_bad_values_are_one_line_errors(trained, capsys, flags, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        run(trained, *flags, capsys=capsys)


def test_a_prompt_file_that_is_not_utf8_is_refused(trained, capsys, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UserError, match="is not UTF-8 text"):
        run(trained, "--prompt-file", str(tmp_path / "latin1.txt"), capsys=capsys)


def test_text_stream_holds_back_split_characters_and_stop_string_beginnings():
    out = io.StringIO()
    utf8 = lambda ids: bytes(ids).decode("utf-8", errors="replace")  # noqa: E731  one token per byte
    stream = TextStream(utf8, ["<end>"], out, stop_token=None)
    writes = []
    for byte in "é <en".encode() + b"d>":
        stream.add(byte)
        writes.append(out.getvalue())
    assert writes[0] == ""  # the first byte of "é" alone decodes to U+FFFD: held back
    assert writes[1] == "é"
    assert writes[-1] == "é "  # "<en", then "<end>" is a stop string: never written
    assert printable_end("ab<e", ["<end>"]) == 2 and printable_end("ab<x", ["<end>"]) == 4


def test_stdin_prompt_through_the_command_line(trained):
    folder = trained[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "stages.generate", "--checkpoint", str(folder / "model.pt"), "--tokenizer",
         str(folder / "tokenizer"), "--prompt", "-", "--max-new-tokens", "5", "--device", "cpu"],
        input="ROMEO:", cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ROMEO:")


def test_help_shows_the_defaults_and_how_to_type_a_message_of_several_lines(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in ("0 is greedy (default: 0.8)", "0 is no limit (default: 40)", "1 is no limit (default: 1.0)",
                    "(default: 200)", "(default: 1337)"):
        assert default in text
    assert 'between two lines of """' in text and "(default: None)" not in text


def test_stop_escapes_are_decoded_as_a_shell_passes_them():
    assert cli.unescape(r"\n\n") == "\n\n" and cli.unescape(r"a\tb\\n") == "a\tb\\n"
    assert cli.unescape(r"\d+ é") == r"\d+ é"  # other backslashes and non-ASCII stay as typed


def test_the_docs_stop_command_line_stops_at_a_blank_line(trained, capsys, tmp_path, monkeypatch):
    """The exact line of docs/generate.md, split as a POSIX shell splits it, reaches decoding as a blank line;
    and a blank line in the output cuts it there."""
    line = next(x for x in (ROOT / "docs" / "generate.md").read_text().splitlines() if "--stop" in x)
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "stages.generate"] and argv[-2:] == ["--stop", r"\n\n"]
    seen = {}
    real = cli.generate

    def spy(*args, **kwargs):  # the decoding loop's view of the stop strings
        seen["stop"] = kwargs["stop_strings"]
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "generate", spy)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scene.txt").write_text("HAMLET.", encoding="utf-8")
    folder = trained[0]
    cli.main(argv[3:] + ["--checkpoint", str(folder / "model.pt"), "--tokenizer", str(folder / "tokenizer"),
                         "--device", "cpu", "--max-new-tokens", "5"])
    assert seen["stop"] == ["\n\n"]
    text_stream_out = io.StringIO()
    stream = TextStream(lambda ids: "".join(map(chr, ids)), seen["stop"], text_stream_out, stop_token=None)
    for ch in "To be\n\nor not":
        stream.add(ord(ch))
    stream.finish("To be")
    assert text_stream_out.getvalue() == "To be"
