"""Instruction data: the two formats, bad records under both policies, and the instructions stage (deterministic,
split exactly as pack splits, answers readable from the prompt)."""
from __future__ import annotations

import dataclasses
import json
import random
import re

import pytest
import yaml

import stages.instructions
from stages.lib.data.documents import Document, DocumentWriter, iter_documents
from stages.lib.data.heldout import lines_of
from stages.lib.data.instruction_builder import EXACT_MATCH_KINDS, KINDS, InstructionDocument, build_split, speeches
from stages.lib.data.instructions import load_conversations, load_records
from stages.lib.data.split import train_documents, val_documents
from stages.lib.engines.local_pack import split_batches
from stages.lib.errors import UserError
from stages.lib.params import InstructionsParams, PackParams

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Name?"},
                     {"role": "assistant", "content": "GPT"}], "id": 7}


def write_jsonl(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


# --------------------------------------------------------------------------- formats

def test_chat_jsonl_keeps_every_turn_and_ignores_other_keys(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", [CHAT, "", CHAT])  # a blank line is not a record
    conversations, counts = load_conversations(path, "error")
    assert conversations == [CHAT["messages"]] * 2
    assert counts == {"read": 2, "kept": 2, "skipped": {}}


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_alpaca_records_become_a_user_and_an_assistant_turn(tmp_path, container):
    records = [{"instruction": "Translate.", "input": "bonjour", "output": "hello"},
               {"instruction": "Say hi.", "input": "", "output": "hi"},
               {"instruction": "Say yes.", "output": "yes"}]
    path = tmp_path / f"alpaca.{container}"
    if container == "json":
        path.write_text(json.dumps(records))
    else:
        write_jsonl(path, records)
    conversations, _ = load_conversations(path, "error")
    assert conversations == [
        [{"role": "user", "content": "Translate.\n\nbonjour"}, {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}],
        [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"}]]


BAD = [  # (record line, reason, what the message says)
    ('{"messages": [{"role": "user", "content": "hi"}, ', "malformed_json", "malformed JSON"),
    ({"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]}, "unknown_role",
     "message 1 has role 'bot'"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "bad_content",
     "message 1 \\(user\\) has no string content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}]}, "bad_content",
     "message 2 \\(assistant\\) has no string content"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}, "no_assistant_turn",
     "no assistant message"),
    ({"messages": []}, "empty_messages", '"messages" must be a non-empty list'),
    ({"instruction": "do", "output": None}, "bad_content", '"output" must be a string'),
    ({"prompt": "a", "completion": "b"}, "unknown_format", "neither a chat"),
    ([1, 2], "not_an_object", "expected a JSON object"),
]


@pytest.mark.parametrize("bad,reason,message", BAD, ids=[b[1] for b in BAD])
def test_a_bad_record_is_named_with_its_line_or_skipped_and_counted(tmp_path, bad, reason, message):
    path = write_jsonl(tmp_path / "data.jsonl", [CHAT, "", bad, CHAT])
    with pytest.raises(UserError, match=rf"data.jsonl: record 3: {message}.*sft.bad_records: skip"):
        load_conversations(path, "error")
    conversations, counts = load_conversations(path, "skip")
    assert conversations == [CHAT["messages"]] * 2
    assert counts == {"read": 3, "kept": 2, "skipped": {reason: 1}}
    assert [r.number for r in load_records(path, "skip")[0]] == [1, 4]  # line numbers, for later checks


def test_a_json_file_must_hold_a_list(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(CHAT))
    with pytest.raises(UserError, match="one.json: a .json instruction file must hold a list"):
        load_conversations(tmp_path / "one.json", "skip")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="must be .jsonl"):
        load_conversations(tmp_path / "data.csv", "skip")


# --------------------------------------------------------------------------- the builder

SETTINGS = InstructionsParams(n_train=70, n_val=20, kinds=list(KINDS), max_chars=500, system_fraction=0.3, seed=7)
NAMES = ["HAMLET", "Hor", "OPHELIA"]


def doc_tag(d: int) -> str:
    """Letters that mark a word as document d's (no other word has a z)."""
    return "z" + chr(97 + d // 26) + chr(97 + d % 26)


def make_documents(n: int, seed: int = 0) -> list[Document]:
    """Play-like documents: speeches headed by recurring names; each word tagged with its document."""
    rng = random.Random(seed)
    docs = []
    for d in range(n):
        tag = doc_tag(d)
        lines = []
        for _ in range(rng.randint(8, 14)):
            lines += ["", rng.choice(NAMES) + "."]
            for _ in range(rng.randint(1, 4)):
                lines.append(" ".join(rng.choice(["night", "crown", "gentle", "heaven"]) + tag
                                      for _ in range(rng.randint(3, 5))) + rng.choice(["", ".", ","]))
        docs.append(Document(f"doc-{d}", "test", "\n".join(lines) + "\n"))
    return docs


def write_corpus(folder, docs):
    with DocumentWriter(folder) as writer:
        for doc in docs:
            writer.write(doc)


def build(folder, split, pack, n, settings=SETTINGS):
    select = val_documents if split == "val" else train_documents
    return build_split(lambda: select(iter_documents(folder), pack.seed, pack.val_fraction), n, split, settings)


def test_split_is_packs_and_no_val_document_reaches_train(tmp_path):
    docs = make_documents(30)
    write_corpus(tmp_path / "clean", docs)
    pack = PackParams(val_fraction=0.3, seed=5)
    part = tmp_path / "clean" / "part-00000.parquet"  # (the one part of a small corpus)
    pack_val = {text for batch in split_batches(part, pack) for text in batch["val"]}
    by_id = {doc.id: doc for doc in docs}

    val, train = build(tmp_path / "clean", "val", pack, 14), build(tmp_path / "clean", "train", pack, 70)
    assert len(val) == 14 and len(train) == 70
    assert {by_id[r["doc"]].text for r in val} <= pack_val
    assert not {by_id[r["doc"]].text for r in train} & pack_val
    for record in val + train:  # every word shown or answered comes from the record's document
        tags = {t for m in record["messages"] for t in re.findall(r"z[a-z]{2}", m["content"])}
        assert tags == {doc_tag(int(record["doc"].split("-")[1]))}, record


def test_builder_is_deterministic_and_seeded(tmp_path):
    write_corpus(tmp_path / "clean", make_documents(12))
    pack = PackParams(val_fraction=0.3, seed=5)
    first = build(tmp_path / "clean", "train", pack, 70)
    assert first == build(tmp_path / "clean", "train", pack, 70)
    other = dataclasses.replace(SETTINGS, seed=8)
    assert first != build(tmp_path / "clean", "train", pack, 70, other)


def test_records_mix_kinds_fit_max_chars_and_answers_are_readable_from_the_prompt(tmp_path):
    write_corpus(tmp_path / "clean", make_documents(12))
    records = build(tmp_path / "clean", "train", PackParams(val_fraction=0.3, seed=5), 70)
    assert {r["kind"] for r in records} == set(KINDS)
    assert {r["kind"] for r in records[:20]} != {records[0]["kind"]}  # shuffled, not in blocks
    assert any(r["messages"][0]["role"] == "system" for r in records)
    assert any(r["messages"][0]["role"] == "user" for r in records)
    loaded, _ = load_conversations(write_jsonl(tmp_path / "train.jsonl", records), "error")
    assert len(loaded) == len(records)  # the builder writes what the loader reads
    for r in records:
        messages, answer = r["messages"], r["messages"][-1]["content"]
        assert sum(len(m["content"]) for m in messages) <= SETTINGS.max_chars
        question = messages[-2]["content"]
        if r["kind"] == "next_line":
            assert re.fullmatch("[ABCD]", answer)
            options = dict(re.findall(r"^([ABCD])\. (.*)$", question, re.M))
            context = question.split("\n\n")[1].split("\n")
            doc_lines = [line.strip() for _, line in lines_of(next(d for d in make_documents(12)
                                                                   if d.id == r["doc"]).text)]
            i = next(i for i in range(len(doc_lines) - 2) if doc_lines[i:i + 2] == context
                     and doc_lines[i + 2] == options[answer])
            assert len(set(options.values())) == 4 and i >= 0
        elif r["kind"] == "missing_word":
            masked = question.split("\n")[-1]
            assert "___" in masked and answer.isalpha()
        elif r["kind"] == "first_word":
            assert question.split("\n\n")[1].startswith(answer)
        elif r["kind"] == "last_word":
            assert question.split("\n\n")[1].rstrip(".,").endswith(answer)
        elif r["kind"] == "followup":
            assert [m["role"] for m in messages if m["role"] != "system"] == ["user", "assistant"] * 2
            assert messages[-2]["content"] == "And the last word?"
        elif r["kind"] == "speaker":
            line = re.search(r'who says "(.*)"\?$', question)[1]
            speech = [block for block in question.split("\n\n") if line in block.split("\n")[1:]]
            assert len(speech) == 1 and speech[0].split("\n")[0] == answer + "."
    assert set(EXACT_MATCH_KINDS) == set(KINDS) - {"continue"}


def test_lines_are_the_non_blank_lines_stripped_of_any_whitespace():
    text = "  first\r\n \t\n\u3000second \x0b\n\n\x85\nthird"
    lines = InstructionDocument(Document("d", "t", text), SETTINGS).lines
    assert lines == [line.strip() for line in text.split("\n") if line.strip()] == ["first", "second", "third"]


def test_speeches_need_a_recurring_label_after_a_blank_line():
    text = ("ACT I.\n\nHAM.\nTo be.\nNot So.\n\nHAM.\nOr not.\n\n   Hor. Inline speech\nmore\n\nHAM.\nAgain.\n\n"
            "Hor.\nYes.\n\nHor.\nNo.\n\nNarration after a blank line.\n")
    assert speeches(text) == [
        ("HAM", ["To be.", "Not So."]),  # "Not So." follows a line: speech text, not a label
        ("HAM", ["Or not."]), ("Hor", ["Inline speech", "more"]), ("HAM", ["Again."]), ("Hor", ["Yes."]),
        ("Hor", ["No."])]  # ACT I heads one speech: not a speaker; the narration belongs to no speech


# --------------------------------------------------------------------------- the stage

def test_the_stage_writes_train_and_val_chat_jsonl(tmp_path, monkeypatch):
    write_corpus(tmp_path / "data/interim/clean", make_documents(20))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "pack": {"val_fraction": 0.3, "seed": 1}, "instructions": {"n_train": 50, "n_val": 14, "seed": 3}}))
    monkeypatch.chdir(tmp_path)
    stages.instructions.main()
    out = tmp_path / "data/instructions"
    first = {split: (out / f"{split}.jsonl").read_bytes() for split in ("train", "val")}
    train, _ = load_conversations(out / "train.jsonl", "error")
    val, _ = load_conversations(out / "val.jsonl", "error")
    assert (len(train), len(val)) == (50, 14)
    stages.instructions.main()
    assert first == {split: (out / f"{split}.jsonl").read_bytes() for split in ("train", "val")}


def test_the_stage_says_what_to_do_when_nothing_can_be_built(tmp_path, monkeypatch):
    write_corpus(tmp_path / "data/interim/clean", [Document(f"d{i}", "t", "short\n") for i in range(20)])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"pack": {"val_fraction": 0.5}}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no train instruction could be built.*several lines"):
        stages.instructions.main()
