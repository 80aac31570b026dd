"""dvc.yaml lists, for each stage, exactly the code it runs and the params sections (or dotted keys) it reads.

That is what makes `dvc exp run -S model.n_layer=2` rerun only train and eval,
and a change to the trainer leave the tokenizer alone.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest
import yaml

from stages.lib.params import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]


def module_path(module: str) -> Path:
    """The file of a stages.* module: a package's __init__.py when it holds code (not just a docstring)."""
    path = ROOT / module.replace(".", "/")
    init = path / "__init__.py"
    if init.is_file() and any(not isinstance(node, ast.Expr) for node in ast.parse(init.read_text()).body):
        return init
    return path.with_suffix(".py")


def stage_imports(module: str) -> set[str]:
    """The stages.* modules `module` imports, transitively (package __init__ files that hold only a docstring
    aside)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(module_path(name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stages"):
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names if a.name.startswith("stages")]
            else:
                continue
            todo += [c for c in candidates if module_path(c).is_file()]
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_code_deps_are_exactly_the_imported_modules(stage):
    module = STAGES[stage]["cmd"].split("-m ")[1].split()[0]
    expected = {module_path(m).relative_to(ROOT).as_posix() for m in stage_imports(module)}
    listed = {d for d in STAGES[stage]["deps"] if d.startswith("stages/")}
    assert listed == expected, f"missing: {sorted(expected - listed)}, extra: {sorted(listed - expected)}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_params_are_exactly_the_sections_read(stage):
    module = STAGES[stage]["cmd"].split("-m ")[1].split()[0]
    assert sorted(STAGES[stage].get("params", [])) == sorted(importlib.import_module(module).PARAM_SECTIONS)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_listed_params_exist(stage):
    # A stage that reads a few keys of another section lists them dotted (tasks: pack.seed): a typo there
    # would make DVC track nothing.
    for key in STAGES[stage].get("params", []):
        section, _, name = key.partition(".")
        assert section in SECTIONS, key
        assert not name or name in {f.name for f in dataclasses.fields(SECTIONS[section])}, key


def test_eval_task_files_are_eval_deps():
    # Editing a shipped task file must rerun eval.
    tasks = yaml.safe_load((ROOT / "params.yaml").read_text())["eval"]["tasks"]
    deps = [Path(d) for d in STAGES["eval"]["deps"]]
    for path in map(Path, tasks):
        assert any(path == d or d in path.parents for d in deps), f"{path} is not among eval's deps"


def test_no_stage_imports_another_stage():
    for stage in STAGES.values():
        module = stage["cmd"].split("-m ")[1].split()[0]
        others = {m for m in stage_imports(module) if not m.startswith("stages.lib") and m != module}
        assert not others, f"{module} imports {others}"


def test_model_params_do_not_reach_data_stages():
    # model.block_size belongs to the model: the shards hold a stream, so pack must not read it.
    for stage in ("merge", "clean", "tokenizer", "pack"):
        assert "model" not in STAGES[stage].get("params", [])


def imports_torch(module: str) -> bool:
    tree = ast.parse(module_path(module).read_text())
    return any((isinstance(node, ast.Import) and any(a.name.split(".")[0] == "torch" for a in node.names))
               or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch")
               for node in ast.walk(tree))


@pytest.mark.parametrize("stage", ["merge", "clean", "tokenizer", "pack", "tasks", "instructions"])
def test_data_stages_do_not_run_torch(stage):
    # Their code deps must not include the model or scoring code: editing autocast must not rebuild the tasks.
    module = STAGES[stage]["cmd"].split("-m ")[1].split()[0]
    with_torch = sorted(m for m in stage_imports(module) if imports_torch(m))
    assert not with_torch, f"{stage} imports torch through {with_torch}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stages_load_exactly_their_param_sections(stage):
    # What dvc.yaml tracks (PARAM_SECTIONS) is what the stage reads: every load_params call passes it.
    module = STAGES[stage]["cmd"].split("-m ")[1].split()[0]
    calls = [node for node in ast.walk(ast.parse(module_path(module).read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_params"]
    for call in calls:
        assert [ast.unparse(a) for a in call.args] == ["PARAM_SECTIONS"], f"{module}: {ast.unparse(call)}"
