"""Typed params: defaults, unknown keys, type errors, cross-field checks, and params.yaml == defaults."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from stages.lib.errors import UserError
from stages.lib.params import SECTIONS, CleanParams, MergeParams, ModelParams, QualityParams, load_params, parse_section


def error_of(section: str, raw: dict) -> str:
    with pytest.raises(UserError) as info:
        parse_section(section, raw)
    return str(info.value)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_defaults_validate(section):
    cls = SECTIONS[section]
    cls().validate(section)  # must not raise
    assert parse_section(section, {}) == cls()
    assert parse_section(section, None) == cls()


@pytest.mark.parametrize("section, raw, dotted", [
    ("merge", {"foo": 1}, "merge.foo"),
    ("model", {"n_layers": 2}, "model.n_layers"),
    ("clean", {"quality": {"foo": 1}}, "clean.quality.foo"),
    ("clean", {"near_dedupe": {"enabled": True, "bands": 4}}, "clean.near_dedupe.bands"),
])
def test_unknown_key_is_named(section, raw, dotted):
    message = error_of(section, raw)
    assert f"unknown key {dotted}" in message


@pytest.mark.parametrize("section, raw, key, phrase", [
    ("model", {"n_layer": "4"}, "model.n_layer", "must be an integer"),  # string for int
    ("model", {"n_layer": True}, "model.n_layer", "must be an integer"),  # bool for int
    ("model", {"bias": 1}, "model.bias", "must be true or false"),  # int for bool
    ("merge", {"extensions": ".txt"}, "merge.extensions", "must be a list"),  # non-list for list
    ("merge", {"extensions": [".txt", 3]}, "merge.extensions[1]", "must be a string"),
    ("clean", {"quality": {"min_words": 1.5}}, "clean.quality.min_words", "must be an integer"),
    ("clean", {"quality": 3}, "clean.quality", "must be a mapping"),
    ("train", {"learning_rate": "fast"}, "train.learning_rate", "must be a number"),
    ("train", {"learning_rate": False}, "train.learning_rate", "must be a number"),
])
def test_wrong_type_names_the_key(section, raw, key, phrase):
    message = error_of(section, raw)
    assert key in message
    assert phrase in message


def test_float_written_without_dot_gives_the_yaml_hint(tmp_path):
    # YAML 1.1 (PyYAML) reads 3e-4 as a string: the message must say how to write it.
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  learning_rate: 3e-4\n")
    assert yaml.safe_load(path.read_text())["train"]["learning_rate"] == "3e-4"
    with pytest.raises(UserError) as info:
        load_params(["train"], path)
    message = str(info.value)
    assert "train.learning_rate" in message
    assert "3.0e-4" in message


def test_int_is_accepted_for_float():
    params = parse_section("train", {"learning_rate": 1})
    assert params.learning_rate == 1.0
    assert isinstance(params.learning_rate, float)


def test_n_embd_not_divisible_by_n_head():
    message = error_of("model", {"n_embd": 100, "n_head": 6})
    assert "model.n_embd=100 is not divisible by model.n_head=6" in message


def test_unknown_literal_lists_the_choices():
    message = error_of("tokenizer", {"kind": "wordpiece"})
    assert "tokenizer.kind='wordpiece'" in message
    for choice in ("bpe", "sentencepiece_bpe", "sentencepiece_unigram"):
        assert choice in message
    nested = error_of("clean", {"pii": {"action": "delete"}})
    assert "clean.pii.action" in nested and "replace" in nested and "drop" in nested


def test_unknown_train_strategy_is_refused():
    message = error_of("train", {"nproc": 2, "strategy": "zero3"})
    assert "train.strategy='zero3' is not one of: ddp, fsdp" in message


def test_missing_keys_take_the_defaults():
    model = parse_section("model", {"n_layer": 2, "n_embd": 96})
    expected = dataclasses.replace(ModelParams(), n_layer=2, n_embd=96)
    assert model == expected

    clean = parse_section("clean", {"min_chars": 5, "quality": {"min_words": 10}})
    assert clean.min_chars == 5
    assert clean.quality == dataclasses.replace(QualityParams(), min_words=10)
    assert clean.pii == CleanParams().pii
    assert clean.near_dedupe == CleanParams().near_dedupe

    merge = parse_section("merge", {"doc_mode": "line"})
    assert merge == dataclasses.replace(MergeParams(), doc_mode="line")


def test_section_validation_runs_on_parse():
    assert "train.warmup_steps=-1" in error_of("train", {"warmup_steps": -1})
    # A smoke test shortens max_steps alone: the warmup is cut to fit instead of refused.
    assert parse_section("train", {"max_steps": 20}).warmup_steps == 50
    assert "clean.quality.min_words" in error_of("clean", {"quality": {"min_words": 5, "max_words": 5}})


def _seed_keys(cls: type, prefix: str) -> list[str]:
    """Dotted keys of every `seed` field, nested sections included."""
    keys = []
    for f in dataclasses.fields(cls):
        if f.name == "seed":
            keys.append(f"{prefix}.seed")
        elif dataclasses.is_dataclass(f.default_factory):
            keys += _seed_keys(f.default_factory, f"{prefix}.{f.name}")
    return keys


SEED_KEYS = [key for name, cls in sorted(SECTIONS.items()) for key in _seed_keys(cls, name)]


def _nested(key: str, value) -> tuple[str, dict]:
    """'clean.near_dedupe.seed', 5 -> ('clean', {'near_dedupe': {'seed': 5}})."""
    section, *path = key.split(".")
    raw = value
    for name in reversed(path):
        raw = {name: raw}
    return section, raw


def test_every_section_with_a_seed_is_covered():
    assert {"clean.near_dedupe.seed", "tokenizer.seed", "pack.seed", "train.seed", "eval.seed"} <= set(SEED_KEYS)


@pytest.mark.parametrize("key", SEED_KEYS)
@pytest.mark.parametrize("bad", [-1, 2**32])
def test_seed_out_of_range_is_refused(key, bad):
    # numpy and SentencePiece reject these with a traceback; xxhash would silently alias them.
    message = error_of(*_nested(key, bad))
    assert f"{key}={bad} must be between 0 and" in message
    for good in (0, 2**32 - 1):
        parse_section(*_nested(key, good))  # the ends of the range are fine


def test_load_params_missing_file(tmp_path):
    path = tmp_path / "nope" / "params.yaml"
    with pytest.raises(UserError) as info:
        load_params(["model"], path)
    assert str(path) in str(info.value)


def test_load_params_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("model:\n  n_layer: [1, 2\n")
    with pytest.raises(UserError) as info:
        load_params(["model"], path)
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_load_params_reads_only_the_named_sections(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("model:\n  n_layer: 2\ntrain:\n  bogus: 1\n")
    params = load_params(["model"], path)
    assert list(params) == ["model"]
    assert params["model"].n_layer == 2
