"""Write outputs under a temporary name and rename them into place.

An interrupted stage therefore leaves either the old output or the new one,
never a half-written file that DVC would cache. A killed one (SIGKILL, a lost
machine) runs no cleanup: its temporary siblings are removed by the next write
of the same output, or, when DVC restores that output from its run cache
instead of running the stage, by the `tidy` stage (`sweep_leftovers`), which
runs on every `dvc repro`. Temporary names carry the writer's process id
(`.model.pt.4242.x1y2z3.tmp`), so the sweep leaves a running writer's files alone.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


LEFTOVER = re.compile(r"^\..+\.(\d+)\.[^.]+\.(?:tmp|old)$")  # .name.<pid>.<random>.tmp|.old


def scratch_prefix(path: Path) -> str:
    """The prefix of a temporary sibling of `path`: hidden, and naming this process."""
    return f".{path.name}.{os.getpid()}."


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_leftovers(path: Path) -> None:
    """Temporary siblings of `path` (.name.*.tmp, .name.*.old) that a killed run left behind.

    One process writes an output at a time, so any there now are stale: a clean
    stage's scratch copy of the corpus, say, or a half-written checkpoint.
    """
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if leftover.suffix in (".tmp", ".old"):
            _remove(leftover)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_leftovers(folders: list[Path]) -> list[Path]:
    """Remove the temporary files and folders in `folders` (not below) whose writing process has died."""
    removed = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            match = LEFTOVER.match(path.name)
            if match and not _process_alive(int(match.group(1))):
                _remove(path)
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it to `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=scratch_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory; swap it in for `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp_dir = Path(tempfile.mkdtemp(prefix=scratch_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp_dir
        os.chmod(tmp_dir, 0o755)  # mkdtemp makes it private; outputs are ordinary folders
        # rename() cannot replace a non-empty directory: move the old one aside first.
        trash = None
        if path.exists():
            trash = Path(tempfile.mkdtemp(prefix=scratch_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, trash / path.name)
        try:
            os.replace(tmp_dir, path)
        except OSError:
            if trash is not None:  # put the old output back rather than leave none
                os.replace(trash / path.name, path)
                trash.rmdir()
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write a small metrics/metadata JSON file, keys in a stable order."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
