"""Shared fixtures: the project root and a few KB of real text."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAMLET = ROOT / "data/raw/shakespeare-milton/shakespeare/hamlet_gut.txt"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_text() -> str:
    """About 12 KB of Hamlet (whole lines), skipping the title page."""
    lines = HAMLET.read_text(encoding="utf-8").splitlines(keepends=True)
    text, size = [], 0
    for line in lines[40:]:
        text.append(line)
        size += len(line)
        if size >= 12_000:
            break
    return "".join(text)
