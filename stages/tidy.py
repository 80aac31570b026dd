"""tidy: remove the temporary files a killed stage left behind.

A stage writes its outputs under temporary names (.clean.4242.x1y2z3.tmp) and
renames them into place, and removes its own leftovers from an earlier killed
run when it runs again. But when the stage's inputs have not changed, `dvc
repro` restores its outputs from DVC's run cache without running it, and
nothing would remove those leftovers. This stage runs on every `dvc repro`
(always_changed in dvc.yaml), in well under a second, and removes the
temporary files whose writing process is gone: those of a running stage stay.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from stages.lib.atomic import sweep_leftovers
from stages.lib.errors import run_stage

PARAM_SECTIONS: list[str] = []  # reads no params
DVC_YAML = Path("dvc.yaml")


def output_folders(dvc_yaml: Path) -> list[Path]:
    """The folders that hold the pipeline's outputs: where their temporary siblings are written."""
    stages = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages", {})
    folders = set()
    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for out in stage.get(key) or []:
                folders.add(Path(out if isinstance(out, str) else next(iter(out))).parent)
    return sorted(f for f in folders if f.is_dir())


def main() -> None:
    removed = sweep_leftovers(output_folders(DVC_YAML))
    for path in removed:
        print(f"tidy: removed {path}, left by a stage that was killed")


if __name__ == "__main__":
    run_stage(main)
