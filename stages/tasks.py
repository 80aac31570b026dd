"""tasks: build the benchmark tasks from the validation documents of the clean corpus.

The validation documents are the ones pack holds out (pack.seed,
pack.val_fraction), so the model never trained on them. Writes
data/tasks/<name>.jsonl (the format eval.tasks reads) and, for each,
data/tasks/lm_eval/<name>.yaml: a task definition for lm-evaluation-harness
(`lm_eval --include_path data/tasks/lm_eval --tasks next_passage`, run from
the project root).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from stages.lib.atomic import atomic_dir
from stages.lib.data.heldout import require_items, split_sources
from stages.lib.errors import UserError, run_stage
from stages.lib.evaluation.task_builder import build_tasks
from stages.lib.evaluation.task_format import lm_eval_config, write_task
from stages.lib.params import TasksParams, load_params

# Of the pack section, only the two keys of its split: a change to pack.shard_tokens does not rebuild the tasks.
PARAM_SECTIONS = ["tasks", "pack.seed", "pack.val_fraction"]
IN_DIR = Path("data/interim/clean")
OUT_DIR = Path("data/tasks")


def main() -> None:
    params = load_params(PARAM_SECTIONS)
    val = split_sources(IN_DIR, params["pack.seed"], params["pack.val_fraction"])["val"]
    tp: TasksParams = params["tasks"]
    if next(iter(val()), None) is None:  # else the refusal below would blame the documents' length
        raise UserError(f"no validation document in {IN_DIR}: pack.val_fraction={params['pack.val_fraction']} "
                        f"leaves none of the documents: raise it, or add documents")
    tasks = build_tasks(val, tp)
    require_items(tasks, "item", f"the validation documents in {IN_DIR}",
                  f"they need more than tasks.context_lines={tp.context_lines} lines (merge.doc_mode: file keeps "
                  f"whole files), or raise pack.val_fraction={params['pack.val_fraction']}")

    with atomic_dir(OUT_DIR) as out_dir:
        (out_dir / "lm_eval").mkdir()
        for name, items in tasks.items():
            write_task(out_dir / f"{name}.jsonl", items)
            config = yaml.safe_dump(lm_eval_config(name, items, OUT_DIR / f"{name}.jsonl"), sort_keys=False,
                                    allow_unicode=True)
            (out_dir / "lm_eval" / f"{name}.yaml").write_text(config, encoding="utf-8")
    for name, items in tasks.items():
        note = "" if len(items) == tp.n_items else f" (tasks.n_items={tp.n_items}: the documents hold no more)"
        print(f"tasks: {len(items)} {name} items{note} -> {OUT_DIR / name}.jsonl")


if __name__ == "__main__":
    run_stage(main)
