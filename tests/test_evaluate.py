"""eval: heldout files scored whole, prompts drawn from the validation documents, samples that name them."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from stages.lib.errors import UserError
from stages.lib.evaluation.samples import PROMPT_WORDS, Prompt, choose_prompts, draw_prompts, samples_markdown
from stages.lib.evaluation.scoring import Documents, batches, check_val_bytes, heldout_paths, heldout_stream
from stages.lib.model.gpt import GPT
from stages.lib.params import EvalParams, ModelParams, parse_section

VAL_TEXTS = [
    "THE TEMPEST\n\nEnter a Shipmaster and a Boteswaine.\n\nMaster. Boteswaine.\nBotes. Heere Master: What cheere?",
    "Café society — naïve façade\nand “quoted” words on a second line\n\n\n",
    "One line only, and it is long enough for five words.",
    "Sonnet 18\nShall I compare thee to a summer’s day?\nThou art more lovely and more temperate:",
]


class CharTokenizer:
    """One token per character (its code point); id 0 ends a document."""
    eot_id = 0
    vocab_size = 0x3000

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i)

    def token_bytes(self) -> np.ndarray:
        return np.array([0] + [len(chr(i).encode("utf-8")) for i in range(1, self.vocab_size)])


class ByteTokenizer(CharTokenizer):
    """One token per UTF-8 byte (byte + 1): other token boundaries than CharTokenizer on the same text."""
    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        return [b + 1 for b in text.encode("utf-8")]

    def decode(self, ids: list[int]) -> str:
        return bytes(i - 1 for i in ids if i).decode("utf-8")

    def token_bytes(self) -> np.ndarray:
        return np.array([0] + [1] * 256)


def packed(tok, texts: list[str]) -> Documents:
    """The documents as pack lays them out: one shard per two documents, each closed by end-of-text."""
    shards, ends = [], []
    for pair in (texts[:2], texts[2:]):
        ids = [tok.encode(t) + [tok.eot_id] for t in pair]
        shards.append(np.concatenate(ids))
        ends.append(np.cumsum([len(i) for i in ids]))
    return Documents(shards, ends)


def test_two_heldout_files_with_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "play.txt").write_text("text")
    paths = [str(tmp_path / "a/play.txt"), str(tmp_path / "b/play.txt")]
    with pytest.raises(UserError, match="heldout_play_bpb; rename one"):
        heldout_paths(paths)
    assert heldout_paths(paths[:1]) == [tmp_path / "a/play.txt"]
    with pytest.raises(UserError, match="which is not a file"):
        heldout_paths([str(tmp_path / "missing.txt")])


def test_a_heldout_file_is_scored_whole_even_when_shorter_than_the_context(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Short text, café.", encoding="utf-8")  # 17 characters, 18 bytes, + end-of-text
    stream = heldout_stream(path, CharTokenizer())
    (x, y), = batches([stream], block_size=256, batch_size=8)
    assert x.shape == y.shape == (1, 18) and x[0, 0].item() == 0 and y[0, -1].item() == CharTokenizer.eot_id
    assert int(CharTokenizer().token_bytes()[y].sum()) == len(path.read_bytes())  # the first character too


def test_an_empty_heldout_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty.txt is empty"):
        heldout_stream(tmp_path / "empty.txt", CharTokenizer())


def test_prompts_are_the_first_words_of_validation_lines_whatever_the_tokenizer():
    prompts = draw_prompts(packed(CharTokenizer(), VAL_TEXTS), CharTokenizer().decode, 4, seed=1337)
    assert len(prompts) == 4 and len({p.text for p in prompts}) == 4
    for p in prompts:
        document, line = map(int, re.fullmatch(r"validation document (\d+) of 4, line (\d+)", p.source).groups())
        words = VAL_TEXTS[document - 1].split("\n")[line - 1].split()
        assert p.text == " ".join(words[:PROMPT_WORDS])
    # The same seed gives the same prompts, run after run and with other token boundaries; another seed others.
    assert draw_prompts(packed(CharTokenizer(), VAL_TEXTS), CharTokenizer().decode, 4, seed=1337) == prompts
    assert draw_prompts(packed(ByteTokenizer(), VAL_TEXTS), ByteTokenizer().decode, 4, seed=1337) == prompts
    assert draw_prompts(packed(CharTokenizer(), VAL_TEXTS), CharTokenizer().decode, 4, seed=7) != prompts


def test_few_distinct_lines_give_fewer_prompts():
    docs = packed(CharTokenizer(), ["same line", "same line\n\n", "same line", "same line"])
    assert [p.text for p in draw_prompts(docs, CharTokenizer().decode, 3, seed=0)] == ["same line"]


def test_explicit_prompts_win_and_the_samples_name_the_prompts_used():
    tok, docs = CharTokenizer(), packed(CharTokenizer(), VAL_TEXTS)
    prompts, how = choose_prompts(EvalParams(prompts=["ROMEO:"]), docs, tok)
    assert prompts == [Prompt("ROMEO:", "eval.prompts")] and how == "Prompts: eval.prompts."
    ep = EvalParams(n_prompts=2, max_new_tokens=3)
    prompts, how = choose_prompts(ep, docs, tok)
    assert len(prompts) == 2 and "2 drawn from the validation documents" in how
    model = GPT(ModelParams(n_layer=1, n_head=2, n_embd=16, block_size=16), vocab_size=tok.vocab_size)
    samples = samples_markdown(model.eval(), tok, ep, prompts, how, torch.device("cpu"))
    assert how in samples
    for p in prompts:
        assert f"## {p.text}\n\nFrom {p.source}.\n\n```text\n{p.text}" in samples
    assert choose_prompts(EvalParams(n_prompts=0), docs, tok)[0] == []


def test_a_tokenizer_that_loses_text_is_warned_about(tmp_path, capsys):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"splits": {"val": {"bytes": 100}}}))
    check_val_bytes(np.array([60, 40]), meta)
    assert capsys.readouterr().err == ""
    check_val_bytes(np.array([60, 39]), meta)
    assert "spell 99 bytes of the 100" in capsys.readouterr().err
    with pytest.raises(UserError, match="run the pack stage"):
        check_val_bytes(np.array([1]), tmp_path / "missing.json")


def test_eval_params_name_the_bad_key():
    for raw, phrase in [({"max_bytes": -1}, "eval.max_bytes=-1 must be >= 0"),
                        ({"n_prompts": -1}, "eval.n_prompts=-1 must be >= 0"),
                        ({"prompts": "ROMEO:"}, "eval.prompts must be a list"),
                        ({"max_tokens": 200000}, "unknown key eval.max_tokens (known keys: max_bytes")]:
        with pytest.raises(UserError, match=re.escape(phrase)):
            parse_section("eval", raw)
    assert parse_section("eval", {"max_bytes": 0, "n_prompts": 0}).max_bytes == 0  # 0: all; no samples


def test_drawn_prompts_name_their_file(tmp_path):
    from stages.lib.data.documents import Document, DocumentWriter
    from stages.lib.data.split import is_val
    from stages.lib.evaluation.samples import validation_ids

    ids = [f"plays/play{i}.txt" for i in range(40)]
    with DocumentWriter(tmp_path / "clean") as writer:
        for doc_id in ids:
            writer.write(Document(doc_id, doc_id, "text"))
    names = validation_ids(tmp_path / "clean", 1337, 0.25)
    assert names == [i for i in ids if is_val(i, 1337, 0.25)] and 0 < len(names) < 40  # pack's split, in order
    assert validation_ids(tmp_path / "missing", 1337, 0.25) == []

    docs = packed(CharTokenizer(), VAL_TEXTS)
    files = [f"plays/{n}.txt" for n in ("hamlet", "lear", "tempest", "macbeth")]
    named = draw_prompts(docs, CharTokenizer().decode, 4, seed=1337, names=files)
    plain = draw_prompts(docs, CharTokenizer().decode, 4, seed=1337)
    for p, q in zip(named, plain):
        document, line = re.fullmatch(r"validation document (\d+) of 4, (line \d+)", q.source).groups()
        assert p.text == q.text and p.source == f"{files[int(document) - 1]}, {line}"
    assert draw_prompts(docs, CharTokenizer().decode, 4, seed=1337, names=files[:3]) == plain  # not these shards'
