"""How a params field is declared and checked: the helpers every section's dataclass uses."""
from __future__ import annotations

from dataclasses import field
from typing import Any

from stages.lib.errors import UserError


def param(default: Any, doc: str) -> Any:
    """A params field: its default and its one description (params.yaml and docs/parameters.md show it)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def section(cls: type) -> Any:
    """A nested section (clean.quality, ...): its keys are described in its own dataclass."""
    return field(default_factory=cls)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(f"params.yaml: {message}")


def positive(section_name: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        check(value > 0, f"{section_name}.{name}={value} must be > 0")


def check_seed(section_name: str, obj: Any) -> None:
    # numpy's legacy seeding and SentencePiece take 32-bit seeds; xxhash would silently wrap larger ones.
    check(0 <= obj.seed < 2**32, f"{section_name}.seed={obj.seed} must be between 0 and 2**32 - 1 = {2**32 - 1}")
