"""Typed params: one dataclass per params.yaml section, the one home of each key's default and description.

`load_params(["model", "train"])` reads params.yaml, checks every key's type,
rejects unknown keys, runs each section's `validate()` and returns the typed
sections. Error messages name the dotted key, e.g.
`model.n_embd=100 is not divisible by model.n_head=6`.

Each field is declared with `param(default, "what it does")`; params.yaml and
docs/parameters.md are rendered from these declarations (`python -m stages.docs`),
and a test fails when either is stale.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from stages.lib.errors import UserError
from stages.lib.params.data import (
    INSTRUCTION_KINDS,
    QUALITY_FILTERS,
    CleanParams,
    Engine,
    InstructionsParams,
    LineDedupeParams,
    MergeParams,
    NearDedupeParams,
    PackParams,
    PiiParams,
    QualityParams,
    TasksParams,
    TokenizerKind,
    TokenizerParams,
)
from stages.lib.params.fields import check
from stages.lib.params.training import Device, EvalParams, ExportParams, ModelParams, Precision, SftParams, TrainParams

__all__ = ["SECTIONS", "load_params", "parse_section", "read_params_file", "as_dict", "Engine", "Device",
           "Precision", "TokenizerKind", "QUALITY_FILTERS", "INSTRUCTION_KINDS", "MergeParams", "CleanParams",
           "QualityParams", "PiiParams", "NearDedupeParams", "LineDedupeParams", "TokenizerParams", "PackParams",
           "ModelParams", "TrainParams", "EvalParams", "TasksParams", "InstructionsParams", "SftParams",
           "ExportParams"]

PARAMS_FILE = "params.yaml"

SECTIONS: dict[str, type] = {  # in params.yaml's order
    "merge": MergeParams,
    "clean": CleanParams,
    "tokenizer": TokenizerParams,
    "pack": PackParams,
    "model": ModelParams,
    "train": TrainParams,
    "eval": EvalParams,
    "tasks": TasksParams,
    "instructions": InstructionsParams,
    "sft": SftParams,
    "export": ExportParams,
}


# --------------------------------------------------------------------------- parsing

_FLOAT_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the field's type hint; return it converted where lossless."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        check(value in choices, f"{key}={value!r} is not one of: {', '.join(map(str, choices))}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        check(isinstance(value, list), f"{key} must be a list, got {value!r}")
        return [_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        check(isinstance(value, dict), f"{key} must be a mapping of keys, got {value!r}")
        return _build(hint, value, key)
    if hint is bool:
        check(isinstance(value, bool), f"{key}={value!r} must be true or false")
        return value
    if hint is int:
        check(isinstance(value, int) and not isinstance(value, bool), f"{key}={value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, str) and _FLOAT_LIKE.match(value):
            raise UserError(f"params.yaml: {key}={value!r} was read as a string: "
                            f"YAML needs a dot in a float, write it like 3.0e-4")
        check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}={value!r} must be a number")
        number = float(value) if isinstance(value, float) or abs(value) < 2 ** 1000 else math.inf  # huge ints
        check(math.isfinite(number), f"{key}={value!r} must be a finite number")
        return number
    if hint is str:
        check(isinstance(value, str), f"{key}={value!r} must be a string")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _build(cls: type, raw: dict, section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise UserError(f"params.yaml: unknown key {section}.{unknown[0]} (known keys: {', '.join(names)})")
    values = {name: _coerce(raw[name], hints[name], f"{section}.{name}") for name in names if name in raw}
    obj = cls(**values)
    obj.validate(section)
    return obj


def parse_section(name: str, raw: dict | None) -> Any:
    """Typed, validated params of one section from its raw mapping (missing keys take defaults)."""
    check(raw is None or isinstance(raw, dict), f"section {name} must be a mapping of keys, got {raw!r}")
    return _build(SECTIONS[name], raw or {}, name)


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def yaml_problem(err: yaml.YAMLError) -> str:
    """The parser's complaint on one line, with where it is: `mapping values are not allowed here (line 3,
    column 8)` (its own message quotes the text over several lines)."""
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem}{where}"


def read_params_file(path: str | Path = PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run the stage from the project root, next to params.yaml")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {yaml_problem(err)}") from None
    check(isinstance(data, dict), "the top level must be a mapping of sections")
    return data


def load_params(keys: list[str], path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate the named sections of params.yaml, by name.

    A dotted key (`pack.seed`) reads that one key of its section: its value comes
    back under the dotted name, checked as the section checks it, and no other key
    of the section is read (a stage lists exactly what it reads in dvc.yaml).
    """
    data = read_params_file(path)
    params = {}
    for key in keys:
        section, _, name = key.partition(".")
        raw = data.get(section)
        if name:
            if raw is not None and not isinstance(raw, dict):
                parse_section(section, raw)  # refuses it: the section must be a mapping
            one = {name: raw[name]} if isinstance(raw, dict) and name in raw else {}
            params[key] = getattr(parse_section(section, one), name)
        else:
            params[key] = parse_section(section, raw)
    return params


def as_dict(params: Any) -> dict:
    return dataclasses.asdict(params)
