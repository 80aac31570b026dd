"""tasks: build the benchmark tasks from the validation documents of the clean corpus.

The validation documents are the ones pack holds out (pack.seed,
pack.val_fraction), so the model never trained on them. Writes
data/tasks/<name>.jsonl (the format eval.tasks reads) and, for each,
data/tasks/lm_eval/<name>.yaml: a task definition for lm-evaluation-harness
(`lm_eval --include_path data/tasks/lm_eval --tasks next_passage`, run from
the project root).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

from stages.lib.atomic import atomic_dir
from stages.lib.data.documents import iter_documents
from stages.lib.errors import UserError, run_stage
from stages.lib.data.split import val_documents
from stages.lib.evaluation.task_builder import BuildSettings, build_tasks
from stages.lib.evaluation.tasks import MultipleChoice
from stages.lib.params import PackParams, TasksParams, load_params

# The pack section is read for its split alone: dvc.yaml lists these two keys, not the section,
# so a change to pack.shard_tokens does not rebuild the tasks.
PARAM_SECTIONS = ["tasks", "pack.seed", "pack.val_fraction"]
IN_DIR = Path("data/interim/clean")
OUT_DIR = Path("data/tasks")


def lm_eval_config(name: str, items: list, jsonl: Path) -> dict:
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


def main() -> None:
    params = load_params(["tasks", "pack"])
    tp: TasksParams = params["tasks"]
    pack: PackParams = params["pack"]
    settings = BuildSettings(**dataclasses.asdict(tp))
    tasks = build_tasks(lambda: val_documents(iter_documents(IN_DIR), pack.seed, pack.val_fraction), settings)
    for name, items in tasks.items():
        if not items:
            raise UserError(f"no {name} item could be built from the validation documents in {IN_DIR}: they need "
                            f"more than tasks.context_lines={tp.context_lines} lines (merge.doc_mode: file keeps "
                            f"whole files), or raise pack.val_fraction={pack.val_fraction}")

    with atomic_dir(OUT_DIR) as out_dir:
        (out_dir / "lm_eval").mkdir()
        for name, items in tasks.items():
            with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as f:
                for item in items:
                    f.write(json.dumps(dataclasses.asdict(item), ensure_ascii=False) + "\n")
            config = lm_eval_config(name, items, OUT_DIR / f"{name}.jsonl")
            (out_dir / "lm_eval" / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                                             encoding="utf-8")
    for name, items in tasks.items():
        note = "" if len(items) == tp.n_items else f" (tasks.n_items={tp.n_items}: the documents hold no more)"
        print(f"tasks: {len(items)} {name} items{note} -> {OUT_DIR / name}.jsonl")


if __name__ == "__main__":
    run_stage(main)
