"""One home per parameter: params.yaml and docs/parameters.md are rendered from stages/lib/params/.

Each key's default and description are declared once (`param(default, doc)`); a
test here fails when either rendered file is stale, and says how to render them.
"""
from __future__ import annotations

import dataclasses
import shutil
import typing

import pytest
import yaml
from dvc.utils.serialize import modify_yaml

from stages.lib.docs.parameters import render_params_yaml, render_reference
from stages.lib.params import SECTIONS, parse_section

RENDER = "run `python -m stages.docs` to render it from stages/lib/params/"


def all_fields(cls: type, prefix: str):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from all_fields(hints[f.name], f"{prefix}.{f.name}")
        else:
            yield f"{prefix}.{f.name}", f


def test_params_yaml_is_rendered_from_the_dataclasses(project_root):
    assert (project_root / "params.yaml").read_text(encoding="utf-8") == render_params_yaml(), \
        f"params.yaml is stale: {RENDER}"


def test_parameter_reference_is_rendered_from_the_dataclasses(project_root):
    assert (project_root / "docs/parameters.md").read_text(encoding="utf-8") == \
        render_reference(project_root / "dvc.yaml"), f"docs/parameters.md is stale: {RENDER}"


def test_rendered_params_yaml_parses_to_the_defaults():
    shipped = yaml.safe_load(render_params_yaml())
    assert list(shipped) == list(SECTIONS)
    for name, cls in SECTIONS.items():
        assert parse_section(name, shipped[name]) == cls()
        assert shipped[name] == dataclasses.asdict(cls())


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_key_is_described_once(name):
    page = render_reference()
    for key, f in all_fields(SECTIONS[name], name):
        doc = f.metadata.get("doc", "")
        assert doc.strip(), f"{key} has no description: declare it with param(default, doc)"
        assert doc.replace("|", "\\|") in page, key


def test_every_section_has_a_description():
    for name, cls in SECTIONS.items():
        assert (cls.__doc__ or "").strip(), f"section {name} has no docstring"
        assert f"## {name}\n" in render_reference()


def test_a_changed_default_makes_the_rendered_files_stale(monkeypatch):
    before_yaml, before_page = render_params_yaml(), render_reference()
    monkeypatch.setattr(SECTIONS["train"].__dataclass_fields__["max_steps"], "default", 7)
    assert "  max_steps: 7 " in render_params_yaml() and render_params_yaml() != before_yaml
    assert "| `max_steps` | `7` |" in render_reference() and render_reference() != before_page


def test_dvc_exp_set_changes_only_the_set_lines(project_root, tmp_path):
    # `dvc exp run -S a=b -S c=d` rewrites params.yaml through DVC's YAML round trip: the rendered file must
    # come back byte-identical except the lines of the keys set (block lists, not long flow lists).
    path = tmp_path / "params.yaml"
    shutil.copy(project_root / "params.yaml", path)
    with modify_yaml(path) as data:
        data["model"]["n_layer"] = 6
        data["clean"]["near_dedupe"]["threshold"] = 0.5
        data["tokenizer"]["special_tokens"][0] = "<|eot|>"
    before = (project_root / "params.yaml").read_text(encoding="utf-8").splitlines()
    after = path.read_text(encoding="utf-8").splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert [b.split("#")[0].strip() for _, b in changed] == ["threshold: 0.5", "- <|eot|>", "n_layer: 6"]


def test_rendering_params_yaml_names_the_values_it_resets(tmp_path):
    from stages.docs import changed_values

    path = tmp_path / "params.yaml"
    path.write_text(render_params_yaml().replace("  max_steps: 2000 ", "  max_steps: 5    ", 1))
    assert changed_values(path, render_params_yaml()) == {"train.max_steps": (5, 2000)}
    assert changed_values(tmp_path / "missing.yaml", render_params_yaml()) == {}
