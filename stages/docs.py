"""docs: render what the docs and params.yaml derive from the code and from metrics/.

    python -m stages.docs            # rewrite every stale file in place
    python -m stages.docs --check    # write nothing; exit 1 naming each stale file

Rendered whole: params.yaml (every key at its default) and docs/parameters.md, from the params dataclasses
(stages/lib/docs/parameters.py). Rendered in place: the blocks of README.md and docs/*.md between
`<!-- metrics:NAME -->` and `<!-- /metrics -->`, from metrics/*.json (stages/lib/docs/metrics_blocks.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from stages.lib.atomic import write_text
from stages.lib.docs.metrics_blocks import METRICS_DIR, load_metrics, render_page
from stages.lib.docs.parameters import render_params_yaml, render_reference
from stages.lib.errors import run_stage

PARAMS_YAML = Path("params.yaml")
REFERENCE = Path("docs/parameters.md")


def pages() -> list[Path]:
    """The pages that may hold metrics blocks."""
    return [Path("README.md"), *sorted(p for p in Path("docs").glob("*.md") if p != REFERENCE)]


def rendered() -> dict[Path, str]:
    """Every generated file as it should read now."""
    metrics = load_metrics(METRICS_DIR)
    files = {PARAMS_YAML: render_params_yaml(), REFERENCE: render_reference()}
    files.update({page: render_page(page.read_text(encoding="utf-8"), metrics, str(page)) for page in pages()})
    return files


def _reads(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


def flat(tree: object, prefix: str = "") -> dict[str, object]:
    """Dotted keys -> values of a parsed YAML mapping."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}{key}.").items()}


def changed_values(path: Path, text: str) -> dict[str, tuple]:
    """The values a rewrite of params.yaml resets to the defaults (an applied experiment's, say), to say so."""
    if not path.exists():
        return {}
    old = flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    new = flat(yaml.safe_load(text))
    return {key.rstrip("."): (old.get(key), value) for key, value in new.items() if old.get(key) != value}


def main() -> None:
    parser = argparse.ArgumentParser(description="Render params.yaml, docs/parameters.md and the docs' metrics blocks.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale file")
    args = parser.parse_args()

    stale = {path: text for path, text in rendered().items() if not _reads(path, text)}
    if args.check:
        for path in stale:
            print(f"stale: {path} (run `python -m stages.docs`)", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path, text in stale.items():
        if path == PARAMS_YAML:
            for key, (old, new) in changed_values(path, text).items():
                print(f"docs: params.yaml: {key} {old!r} -> {new!r}, its default in stages/lib/params/")
        write_text(path, text)
        print(f"docs: rewrote {path}")


if __name__ == "__main__":
    run_stage(main)
