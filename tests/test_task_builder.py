"""The tasks stage: items built deterministically from validation documents alone, verbatim pieces of them."""
from __future__ import annotations

import dataclasses
import random
import re

import pytest
import yaml

import stages.tasks
from stages.lib.data.documents import Document, DocumentWriter, iter_documents
from stages.lib.data.heldout import lines_of
from stages.lib.data.split import val_documents
from stages.lib.engines.local_pack import split_batches
from stages.lib.errors import UserError
from stages.lib.evaluation.task_builder import build_tasks, span, word_positions
from stages.lib.evaluation.task_format import Cloze, MultipleChoice, load_task
from stages.lib.params import PackParams, TasksParams

SETTINGS = TasksParams(n_items=40, context_lines=3, choice_lines=2, n_choices=4, min_word_chars=4,
                       max_chars=300, seed=7)
WORDS = ["honour", "crown", "night", "sword", "gentle", "heaven", "father", "whither", "speak", "thou"]


def tag(d: int) -> str:
    """Letters that mark a word as document d's (no word in WORDS has a z)."""
    return "z" + chr(97 + d // 26) + chr(97 + d % 26)


def make_documents(n: int, seed: int = 0) -> list[Document]:
    """Play-like documents: speaker lines, blank lines, indented verse; each word tagged with its document."""
    rng = random.Random(seed)
    docs = []
    for d in range(n):
        lines = []
        for i in range(rng.randint(30, 60)):
            if i % 5 == 0:
                lines += ["", "SPEAKER."]
            words = [rng.choice(WORDS) + tag(d) for _ in range(rng.randint(2, 7))]
            lines.append(rng.choice(["", "  "]) + " ".join(words) + rng.choice(["", ".", ",", "!"]))
        docs.append(Document(f"doc-{d}", "test", "\n".join(lines) + "\n"))
    return docs


def test_lines_keep_their_separators_and_indentation():
    text = "\nA.\n  first line\n\n\nsecond\n"
    units = lines_of(text)
    assert [line for _, line in units] == ["A.", "  first line", "second"]
    assert "".join(sep + line for sep, line in units) + "\n" == text
    assert span(units, 1, 2) == "  first line\n\n\nsecond"


def test_items_are_verbatim_pieces_of_their_document():
    docs = make_documents(6)
    tasks = build_tasks(lambda: docs, SETTINGS)
    texts = [doc.text for doc in docs]
    assert len(tasks["next_passage"]) == len(tasks["last_word"]) == SETTINGS.n_items
    answers = set()
    for item in tasks["next_passage"]:
        assert isinstance(item, MultipleChoice) and len(item.choices) == SETTINGS.n_choices
        assert len(set(item.choices)) == SETTINGS.n_choices
        home = [t for t in texts if item.context + item.choices[item.answer] in t]
        assert len(home) == 1  # the true continuation follows the context in its document
        for choice in item.choices:  # distractors come from the same work, joined by the same separator
            assert choice.startswith(item.choices[item.answer][:1]) and choice.lstrip("\n") in home[0]
            assert len(item.context) + len(choice) <= SETTINGS.max_chars
        region = set((item.context + item.choices[item.answer]).splitlines()) - {"", "SPEAKER."}
        for i, choice in enumerate(item.choices):  # distractors never overlap the context or the true passage
            assert i == item.answer or not set(choice.splitlines()) & region
        answers.add(item.answer)
    assert answers == set(range(SETTINGS.n_choices))  # the answer's place is drawn
    for item in tasks["last_word"]:
        assert isinstance(item, Cloze)
        assert re.fullmatch(r" [A-Za-z]{4,}", item.target)
        # The target ends its line (punctuation aside).
        assert any(re.search(re.escape(item.context + item.target) + r"[.,!]?\n", t) for t in texts)
        # LAMBADA-style: the passage already holds the word, so it can be predicted from the context.
        assert re.search(rf"(?<!\w){item.target.strip()}(?!\w)", item.context)


def test_last_word_skips_lines_whose_word_the_context_lacks():
    text = "a zebra ran\nfour five six\nseven eight nine\nthe word zebra\nthe word three\n"
    units = lines_of(text)
    settings = TasksParams(n_items=5, context_lines=3, choice_lines=1, n_choices=2, min_word_chars=4,
                           max_chars=500, seed=1)
    assert word_positions(units, settings) == [3]  # "zebra" is in its context, "three" is not in its own


def test_the_same_seed_builds_the_same_tasks_and_another_seed_others():
    docs = make_documents(6)
    first = build_tasks(lambda: docs, SETTINGS)
    assert build_tasks(lambda: list(docs), SETTINGS) == first
    other = build_tasks(lambda: docs, dataclasses.replace(SETTINGS, seed=8))
    assert other["next_passage"] != first["next_passage"] and other["last_word"] != first["last_word"]


def test_too_few_lines_give_fewer_items_not_an_error():
    tiny = [Document("a", "t", "one two three four\nfive six seven eight\n")]
    assert build_tasks(lambda: tiny, SETTINGS) == {"next_passage": [], "last_word": []}


def write_corpus(folder, docs):
    with DocumentWriter(folder) as writer:
        for doc in docs:
            writer.write(doc)


def test_only_the_validation_documents_pack_holds_out_are_used(tmp_path):
    docs = make_documents(30)
    write_corpus(tmp_path / "clean", docs)
    pack = PackParams(val_fraction=0.3, seed=5)
    part = tmp_path / "clean" / "part-00000.parquet"  # (the one part of a small corpus)
    val_texts = {text for batch in split_batches(part, pack) for text in batch["val"]}
    selected = list(val_documents(iter_documents(tmp_path / "clean"), pack.seed, pack.val_fraction))
    assert {doc.text for doc in selected} == val_texts and 0 < len(val_texts) < len(docs)

    tasks = build_tasks(lambda: val_documents(iter_documents(tmp_path / "clean"), pack.seed, pack.val_fraction),
                        SETTINGS)
    val_tags = {tag(int(doc.id.split("-")[1]))[1:] for doc in selected}
    for item in tasks["next_passage"] + tasks["last_word"]:
        tags = set(re.findall(r"z([a-z]{2})\b", item.context))  # every word carries its document's tag
        assert tags and tags <= val_tags


def test_the_stage_writes_task_files_eval_reads_and_lm_eval_definitions(tmp_path, monkeypatch):
    write_corpus(tmp_path / "data/interim/clean", make_documents(20))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "pack": {"val_fraction": 0.5, "seed": 1}, "tasks": {"n_items": 10, "context_lines": 3, "seed": 3}}))
    monkeypatch.chdir(tmp_path)
    stages.tasks.main()
    for name, kind in (("next_passage", "multiple_choice"), ("last_word", "cloze")):
        task = load_task(tmp_path / "data/tasks" / f"{name}.jsonl")
        assert (task.name, task.kind, len(task.items)) == (name, kind, 10)
        config = yaml.safe_load((tmp_path / "data/tasks/lm_eval" / f"{name}.yaml").read_text())
        assert config["task"] == name and config["target_delimiter"] == ""
        assert config["dataset_kwargs"]["data_files"]["test"] == f"data/tasks/{name}.jsonl"
        assert config["output_type"] == ("multiple_choice" if kind == "multiple_choice" else "loglikelihood")


def test_the_stage_says_what_to_do_when_no_item_can_be_built(tmp_path, monkeypatch):
    write_corpus(tmp_path / "data/interim/clean", [Document(f"d{i}", "t", "a short document\n") for i in range(20)])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"pack": {"val_fraction": 0.5}}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no next_passage item could be built from the validation documents in "
                                        "data/interim/clean: they need more than tasks.context_lines=6"):
        stages.tasks.main()
