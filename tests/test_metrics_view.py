"""The commands the docs give to read the metrics and the stage graph print lines that fit a 120-column
terminal, on the committed dvc.yaml and metrics/."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # git and dvc in a scratch project: a few seconds


def doc_commands() -> list[str]:
    """Every `dvc metrics`, `dvc dag` and `dvc stage list` line of the README and docs, without its comment."""
    lines = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in page.read_text(encoding="utf-8").splitlines():
            if re.match(r"dvc (metrics (show|diff --all)|dag|stage list)", line):
                lines.append(line.split("  #")[0].strip())
    return lines


def test_the_docs_metrics_and_graph_commands_fit_120_columns(tmp_path):
    commands = doc_commands()
    assert {"dvc metrics diff --all", "dvc dag --mermaid", "dvc stage list"} <= set(commands)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(ROOT / "metrics", tmp_path / "metrics")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], git + ["commit", "-qm", "m"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    for command in commands:
        proc = subprocess.run(command.split(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (command, proc.stderr)
        width = max(map(len, proc.stdout.splitlines()))
        assert width <= 120, f"{command}: {width} columns"
        assert "val_bpb" in proc.stdout or "metrics/eval.json" not in command

