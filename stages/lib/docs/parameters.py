"""params.yaml and docs/parameters.md, rendered from the params dataclasses (stages/lib/params/).

Each key's default and description live once, in its `param(default, doc)`
declaration; these two files are views of it. `python -m stages.docs` writes
them, and tests/test_parameters_doc.py fails when either is stale.
"""
from __future__ import annotations

import dataclasses
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from stages.lib.params import SECTIONS

WIDTH = 116  # params.yaml lines stay readable in a 120-column terminal
VALUE_COLUMN = 30  # where inline comments start, when the key and value leave room

YAML_HEADER = """\
# Every setting of the pipeline, grouped by stage. A stage reads only the sections dvc.yaml lists for it,
# so changing a key reruns only what depends on it:
#   dvc exp run -S model.n_layer=6              # train and what follows it
#   dvc exp run -S tokenizer.vocab_size=4000    # tokenizer, pack, train and what follows
# The defaults and descriptions live in stages/lib/params/; this file and docs/parameters.md are rendered
# from there by `python -m stages.docs`. Write floats with a dot (3.0e-4): YAML reads 3e-4 as a string.
"""


def fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The dataclass's fields with their resolved type hints, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def is_section(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint)


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def summary(cls: type) -> str:
    """A section's description: its docstring, as one paragraph."""
    return " ".join((cls.__doc__ or "").split())


def yaml_value(value: Any) -> str:
    """A value as params.yaml writes it: flow style, floats with a dot, strings unquoted where YAML allows."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def comment_lines(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, WIDTH - len(indent) - 2)]


def yaml_lines(cls: type, indent: str) -> list[str]:
    lines = []
    for f, hint in fields(cls):
        if is_section(hint):
            lines += comment_lines(summary(hint), indent)
            lines.append(f"{indent}{f.name}:")
            lines += yaml_lines(hint, indent + "  ")
            continue
        value, items = default_of(f), []
        if isinstance(value, list) and value:
            # Block style: `dvc exp run -S` rewrites a long flow list over several lines, a block list it keeps.
            entry, items = f"{indent}{f.name}:", [f"{indent}- {yaml_value(v)}" for v in value]
        else:
            entry = f"{indent}{f.name}: {yaml_value(value)}"
        doc = f.metadata["doc"]
        if len(entry) <= VALUE_COLUMN - 2 and VALUE_COLUMN + 2 + len(doc) <= WIDTH:
            lines.append(f"{entry.ljust(VALUE_COLUMN)}# {doc}")
        elif len(entry) + 2 + len(doc) <= WIDTH:
            lines.append(f"{entry}  # {doc}")
        else:
            lines += comment_lines(doc, indent)
            lines.append(entry)
        lines += items
    return lines


def render_params_yaml() -> str:
    """params.yaml with every key at its default, each described by a comment."""
    lines = [YAML_HEADER]
    for name, cls in SECTIONS.items():
        lines += comment_lines(summary(cls), "")
        lines.append(f"{name}:")
        lines += yaml_lines(cls, "  ")
        lines.append("")
    return "\n".join(lines)


def kind_of(hint: Any) -> str:
    """What a key takes, for the reference table."""
    if typing.get_origin(hint) is Literal:
        return " \\| ".join(f"`{c}`" for c in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return "list"
    return {bool: "`true` \\| `false`", int: "integer", float: "number", str: "text"}[hint]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table_rows(cls: type, prefix: str) -> tuple[list[str], list[tuple[str, type]]]:
    """Rows for the section's own keys, and its nested sections to render after it."""
    rows, nested = [], []
    for f, hint in fields(cls):
        if is_section(hint):
            nested.append((f"{prefix}.{f.name}", hint))
        else:
            rows.append(f"| `{f.name}` | `{cell(yaml_value(default_of(f)))}` | {kind_of(hint)} | "
                        f"{cell(f.metadata['doc'])} |")
    return rows, nested


def readers(dvc_yaml: Path) -> dict[str, list[str]]:
    """Section (or dotted key) -> the stages that list it as params in dvc.yaml."""
    stages = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages", {})
    by_key: dict[str, list[str]] = {}
    for stage, spec in stages.items():
        for key in spec.get("params") or []:
            by_key.setdefault(key, []).append(stage)
    return by_key


def section_block(name: str, cls: type, read_by: dict[str, list[str]]) -> list[str]:
    lines = [f"## {name}", "", summary(cls), ""]
    stages = read_by.get(name, [])
    partial = sorted({stage for key, ss in read_by.items() if key.startswith(name + ".") for stage in ss})
    if stages:
        lines += [f"Read by: {', '.join(f'`{s}`' for s in stages)}"
                  + (f"; {', '.join(f'`{s}`' for s in partial)} read some keys" if partial else "") + ".", ""]
    todo = [(name, cls)]
    while todo:
        prefix, current = todo.pop(0)
        rows, nested = table_rows(current, prefix)
        if current is not cls:
            lines += [f"### {prefix}", "", summary(current), ""]
        lines += ["| key | default | takes | what it does |", "|---|---|---|---|", *rows, ""]
        todo = nested + todo
    return lines


def render_reference(dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """docs/parameters.md: every key, its default, what it takes and what it does, section by section."""
    read_by = readers(dvc_yaml)
    lines = [
        "# Parameters",
        "",
        "Every key of `params.yaml`, section by section: its default, what it takes and what it does. A stage",
        "reads only the sections `dvc.yaml` lists for it, so a changed key reruns only the stages that read it.",
        "A bad value stops the stage with one line naming the key, e.g.",
        "`params.yaml: model.n_embd=100 is not divisible by model.n_head=3`.",
        "",
        "Try a value for one run with `dvc exp run -S train.max_steps=500`; change a default in",
        "`stages/lib/params/`, where each key is declared once, then run `python -m stages.docs` to render",
        "`params.yaml` and this page again (a test fails while either is stale).",
        "",
        "Sections: " + ", ".join(f"[{name}](#{name})" for name in SECTIONS) + ".",
        "",
    ]
    for name, cls in SECTIONS.items():
        lines += section_block(name, cls, read_by)
    return "\n".join(lines).rstrip() + "\n"
