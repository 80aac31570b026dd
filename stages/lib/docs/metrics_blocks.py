"""Tables rendered from metrics/*.json into the markdown pages that show them.

A page marks each generated block with two HTML comments, which markdown does not display:

    <!-- metrics:results -->
    (rendered here; anything in between is replaced)
    <!-- /metrics -->

`render_page` replaces every block's body with what its renderer makes of the metrics, so a figure shown
in the docs is the figure in metrics/ (the metrics `dvc repro` wrote last). Renderers find task names,
removal reasons and before/after pairs in the keys themselves, so a new task file or clean rule shows up
without a change here. Chance levels and item counts are in reports/ (not in git), so the blocks do not
show them: the pages say where they are.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from stages.lib.errors import UserError

METRICS_DIR = Path("metrics")
BLOCK = re.compile(r"(?P<open><!-- metrics:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /metrics -->)", re.S)
OPENING = re.compile(r"<!-- metrics:([\w-]+) -->")

Metrics = dict[str, dict]  # file stem ("eval") -> its flat JSON


def load_metrics(folder: Path = METRICS_DIR) -> Metrics:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def render_page(text: str, metrics: Metrics, page: str) -> str:
    """`text` with every metrics block re-rendered; `page` names the file in errors."""
    opened, closed = OPENING.findall(text), BLOCK.findall(text)
    if len(opened) != len(closed):
        raise UserError(f"{page}: a <!-- metrics:NAME --> block is not closed by <!-- /metrics -->")

    def one(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise UserError(f"{page}: unknown metrics block {name!r} (known: {', '.join(RENDERERS)})")
        return match["open"] + RENDERERS[name](metrics) + match["close"]

    return BLOCK.sub(one, text)


# --------------------------------------------------------------------------- formatting

def _file(metrics: Metrics, stem: str) -> dict:
    if stem not in metrics:
        raise UserError(f"metrics/{stem}.json not found: run `dvc repro` first, then `python -m stages.docs`")
    return metrics[stem]


def _count(n: float) -> str:
    """676,421 as it is; millions as 8.2M."""
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n:,.0f}"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


# --------------------------------------------------------------------------- what the keys hold

def _tasks(ev: dict) -> dict[str, dict[str, float]]:
    """task name -> {metric: value}, from eval.json's task_<name>_<metric> keys (every task has an _acc)."""
    names = [key[len("task_"):-len("_acc")] for key in ev if key.startswith("task_") and key.endswith("_acc")]
    return {name: {key[len(f"task_{name}_"):]: value for key, value in ev.items() if key.startswith(f"task_{name}_")}
            for name in sorted(names)}


def _headline(task: dict[str, float]) -> str:
    """The accuracy a task is judged by: length-normalised for multiple choice, plain for cloze."""
    return "acc_norm" if "acc_norm" in task else "acc"


def _before_after(sft: dict) -> list[tuple[str, float, float]]:
    """(measure, pretrained, fine-tuned) for every pretrained_<m> / sft_<m> pair of sft.json."""
    pairs = []
    for key, before in sft.items():
        measure = key[len("pretrained_"):]
        if key.startswith("pretrained_") and f"sft_{measure}" in sft:
            pairs.append((measure, before, sft[f"sft_{measure}"]))
    return pairs


def _is_accuracy(measure: str) -> bool:
    return "loss" not in measure


# --------------------------------------------------------------------------- the blocks

def results(metrics: Metrics) -> str:
    """README: what the default run reaches, each figure beside what it must beat."""
    train, ev, sft = _file(metrics, "train"), _file(metrics, "eval"), _file(metrics, "sft")
    rows = [[f"`val_bpb`: bits per byte on {ev['val_bytes']:,} validation bytes (lower is better)",
             f"{ev['val_bpb']:.3f}", f"{ev['unigram_bpb']:.3f}: a unigram model of the train split"]]
    for name, task in _tasks(ev).items():
        metric = _headline(task)
        rows.append([f"`{name}` task, `{metric}`", f"{task[metric]:.3f}",
                     f"chance: `task_{name}_chance` in reports/eval.json"])
    for measure, before, after in _before_after(sft):
        if _is_accuracy(measure):
            rows.append([f"instruction tuning, `{measure}` before → after", f"{_pct(before)} → {_pct(after)}",
                         f"chance: `chance_{measure}` in reports/sft.json"])
    intro = (f"{train['params_non_embedding'] / 1e6:.2f}M parameters outside the embedding, trained for "
             f"{train['steps']:,} steps on {_count(train['tokens'])} tokens:\n\n")
    return intro + _table(["measure", "value", "to beat"], rows)


def corpus(metrics: Metrics) -> str:
    """pipeline.md: what each data stage made of the corpus."""
    merge, clean = _file(metrics, "merge"), _file(metrics, "clean")
    tok, pack = _file(metrics, "tokenizer"), _file(metrics, "pack")
    skipped = sum(merge.get("skipped_by_extension", {}).values()) + merge.get("files_skipped", 0)
    rows = [
        ["merge", f"{merge['documents']:,} documents from {merge['files_read']:,} files, {_mb(merge['bytes'])} "
                  f"({skipped} files skipped)"],
        ["clean", f"{clean['documents_out']:,} documents, {_mb(clean['bytes_out'])}"],
        ["tokenizer", f"{tok['vocab_size']:,} tokens, {tok['bytes_per_token']:.2f} bytes per token"],
    ]
    for split in ("train", "val"):
        rows.append([f"pack ({split})", f"{pack[f'{split}_documents']:,} documents, "
                                       f"{pack[f'{split}_tokens']:,} tokens, {_mb(pack[f'{split}_bytes'])}"])
    return _table(["stage", "output"], rows)


def clean(metrics: Metrics) -> str:
    """data.md: documents and bytes clean removed, per reason; personal data found."""
    report = _file(metrics, "clean")
    reasons = sorted(key[len("removed_documents_"):] for key in report if key.startswith("removed_documents_"))
    rows = [["in", f"{report['documents_in']:,}", f"{report['bytes_in']:,}"]]
    rows += [[f"removed: {reason}", f"{report[f'removed_documents_{reason}']:,}",
              f"{report[f'removed_bytes_{reason}']:,}"] for reason in reasons]
    rows += [["boilerplate lines cut", f"{report['boilerplate_units_removed']:,} lines",
              f"{report['boilerplate_bytes_removed']:,}"],
             ["out", f"{report['documents_out']:,}", f"{report['bytes_out']:,}"]]
    pii = {key[len("pii_"):]: n for key, n in sorted(report.items()) if key.startswith("pii_") and n}
    found = ", ".join(f"{kind} {n:,}" for kind, n in pii.items()) or "none"
    return _table(["", "documents", "bytes"], rows) + f"\nPersonal data found: {found}.\n"


def evaluation(metrics: Metrics) -> str:
    """evaluation.md: every figure of eval.json."""
    ev = _file(metrics, "eval")
    rows = [["`val_bpb`", f"{ev['val_bpb']:.4f}"], ["`val_loss`", f"{ev['val_loss']:.4f}"],
            ["`val_ppl`", f"{ev['val_ppl']:.2f}"], ["`unigram_bpb`", f"{ev['unigram_bpb']:.4f}"],
            ["`val_bytes`, `val_tokens`", f"{ev['val_bytes']:,}, {ev['val_tokens']:,}"]]
    rows += [[f"`{key}`", f"{value:.4f}"] for key, value in sorted(ev.items()) if key.startswith("heldout_")]
    tasks = _tasks(ev)
    measures = sorted({m for task in tasks.values() for m in task} - {"n", "chance"})  # older metrics held them
    task_rows = [[f"`{name}`", *(f"{task[m]:.4f}" if m in task else "" for m in measures)]
                 for name, task in tasks.items()]
    return (_table(["metric", "value"], rows) + "\n" + _table(["task", *(f"`{m}`" for m in measures)], task_rows)
            + "\nEach task's `chance` and item count `n` are in `reports/eval.json`.\n")


def instruction_tuning(metrics: Metrics) -> str:
    """sft.md: each measure of the held-out conversations before and after fine-tuning, then per kind."""
    sft = _file(metrics, "sft")
    rows = []
    for measure, before, after in _before_after(sft):
        show = _pct if _is_accuracy(measure) else (lambda x: f"{x:.3f}")
        rows.append([f"`{measure}`", show(before), show(after)])
    text = _table(["measure", "pretrained", "fine-tuned"], rows)
    kinds = sorted(key[len("exact_match_"):] for key in sft if key.startswith("exact_match_"))
    if kinds:
        per_kind = [[f"`{kind}`", _pct(sft[f"exact_match_{kind}"])] for kind in kinds]
        text += "\nThe fine-tuned model per kind:\n\n" + _table(["kind", "exact match"], per_kind)
    return text + ("\nThe chance level (`chance_exact_match`, `chance_<kind>`) and the items scored per kind "
                   "(`items_<kind>`) are in `reports/sft.json`.\n")


RENDERERS: dict[str, Callable[[Metrics], str]] = {
    "results": results,
    "corpus": corpus,
    "clean": clean,
    "eval": evaluation,
    "sft": instruction_tuning,
}
