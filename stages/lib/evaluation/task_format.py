"""Benchmark task files: multiple choice and cloze items, read and written as JSONL, and their lm-eval definition.

A task file is JSONL, one record per line:
  multiple choice  {"context": str, "choices": [str, ...], "answer": int}
  cloze            {"context": str, "target": str}
The continuation (a choice or the target) is appended to the context as-is: a
choice that needs a leading space carries it. The task's name is the file stem.
Scoring them needs torch and lives in stages/lib/evaluation/tasks.py; this module
stays free of it, so the tasks stage that writes the files does not import it.
"""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from stages.lib.errors import UserError


@dataclass
class MultipleChoice:
    context: str
    choices: list[str]
    answer: int


@dataclass
class Cloze:
    context: str
    target: str


@dataclass
class Task:
    name: str  # the file stem: metrics are task_<name>_<metric>
    kind: str  # "multiple_choice" | "cloze"
    items: list  # [MultipleChoice] or [Cloze]


# --------------------------------------------------------------------------- reading

def _record(line: str, where: str) -> MultipleChoice | Cloze:
    """One JSONL line as an item; `where` is "file:line" for the error message."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not valid JSON ({err.msg}): each line must be one JSON record") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("context"), str):
        raise UserError(f'{where}: a record needs "context" (a string), with "choices" and "answer" '
                        f'(multiple choice) or "target" (cloze)')
    if "choices" in rec or "answer" in rec:
        choices, answer = rec.get("choices"), rec.get("answer")
        if not (isinstance(choices, list) and len(choices) >= 2 and all(isinstance(c, str) and c for c in choices)):
            raise UserError(f'{where}: "choices" must be a list of at least 2 non-empty strings')
        if not (isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices)):
            raise UserError(f'{where}: "answer" must be the index of the right choice, 0 to {len(choices) - 1}, '
                            f'got {answer!r}')
        return MultipleChoice(rec["context"], choices, answer)
    if not (isinstance(rec.get("target"), str) and rec["target"]):
        raise UserError(f'{where}: a record needs "choices" and "answer" (multiple choice) '
                        f'or a non-empty "target" string (cloze)')
    return Cloze(rec["context"], rec["target"])


def load_task(path: str | Path) -> Task:
    """Read and check a task file: every record of one kind; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file {path} not found: build it (dvc repro tasks) or fix eval.tasks")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"task file {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"task file {path} cannot be read ({err.strerror})") from None
    items = []
    for number, line in enumerate(io.StringIO(text), start=1):  # lines end at \n only, as a file's do
        if not line.strip():
            continue
        item = _record(line, f"{path}:{number}")
        if items and type(item) is not type(items[0]):
            raise UserError(f"{path}:{number}: a {_kind(item)} record in a {_kind(items[0])} task: "
                            f"a task file holds one kind of record")
        items.append(item)
    if not items:
        raise UserError(f"task file {path} holds no records: add some or remove it from eval.tasks")
    return Task(path.stem, _kind(items[0]), items)


def _kind(item: MultipleChoice | Cloze) -> str:
    return "multiple_choice" if isinstance(item, MultipleChoice) else "cloze"


# --------------------------------------------------------------------------- writing

def write_task(path: Path, items: list[MultipleChoice] | list[Cloze]) -> None:
    """The items as a task file, in order (UTF-8, non-ASCII kept as it is)."""
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(dataclasses.asdict(item), ensure_ascii=False) + "\n")


def lm_eval_config(name: str, items: list[MultipleChoice] | list[Cloze], jsonl: Path) -> dict:
    """An lm-evaluation-harness task scoring the file as eval does (no delimiter before the continuation).

    The doc_to_* entries name record fields, which lm-eval reads as they are
    (a Jinja template would turn a context made of digits into a number).
    """
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": jsonl.as_posix()}},  # relative: run lm_eval from the project root
        "test_split": "test",
        "doc_to_text": "context",
        "target_delimiter": "",
    }
    if isinstance(items[0], MultipleChoice):
        metrics = ["acc", "acc_norm"]
        config |= {"output_type": "multiple_choice", "doc_to_choice": "choices", "doc_to_target": "answer"}
    else:
        metrics = ["acc"]
        config |= {"output_type": "loglikelihood", "doc_to_target": "target"}
    config["metric_list"] = [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in metrics]
    return config
