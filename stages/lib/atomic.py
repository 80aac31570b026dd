"""Write outputs under a temporary name and rename them into place.

An interrupted stage therefore leaves either the old output or the new one,
never a half-written file that DVC would cache. Temporary files live in one
git- and DVC-ignored scratch folder, `.cache/tmp/`, outside every output, so
DVC never sees them, and their names carry the output's path and the writer's
process id (`artifacts%2Fcheckpoints%2Fmodel.pt.4242.x1y2z3.tmp`). A killed
stage (SIGKILL, a lost machine) runs no cleanup: what it left is removed by
the next write of the same output, and by every stage as it starts
(`sweep_scratch`, for writers that are gone), so no leftover outlives the next run.

An output outside the project folder, or on another filesystem than the
scratch folder (a rename cannot cross filesystems), gets a hidden temporary
sibling instead (`.model.pt.4242.x1y2z3.tmp`), removed by its next write.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

SCRATCH = Path(".cache/tmp")  # relative to the project folder, where stages run
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full disk, or the user's quota
LEFTOVER = re.compile(r"^\.?.+\.(\d+)\.[^.]+\.(?:tmp|old)$")  # <name>.<pid>.<random>.tmp|.old


def _scratch_for(path: Path) -> tuple[Path, str]:
    """The folder and name prefix (without pid) of `path`'s temporary files."""
    root = Path.cwd()
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.parent, f".{path.name}"
    scratch = root / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    anchor = path.absolute().parent
    while not anchor.exists():  # where the output will be: its nearest existing folder
        anchor = anchor.parent
    if os.stat(scratch).st_dev != os.stat(anchor).st_dev:
        return path.parent, f".{path.name}"
    return scratch, quote(rel.as_posix(), safe="")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _dead_writer(path: Path) -> bool:
    match = LEFTOVER.match(path.name)
    return bool(match) and not _process_alive(int(match.group(1)))


def remove_leftovers(path: str | os.PathLike) -> None:
    """The temporary files of `path` that a killed writer left behind (a live writer's stay)."""
    path = Path(path)
    folder, prefix = _scratch_for(path)
    for leftover in folder.glob(f"{glob.escape(prefix)}.*"):
        if _dead_writer(leftover):
            _remove(leftover)


def sweep_scratch() -> list[Path]:
    """Remove everything in the scratch folder whose writing process is gone; return what was removed."""
    scratch = Path.cwd() / SCRATCH
    if not scratch.is_dir():
        return []
    removed = [path for path in sorted(scratch.iterdir()) if _dead_writer(path)]
    for path in removed:
        _remove(path)
    return removed


def _new_temp(path: Path, suffix: str, make_dir: bool) -> Path:
    remove_leftovers(path)
    folder, prefix = _scratch_for(path)
    args = dict(prefix=f"{prefix}.{os.getpid()}.", suffix=suffix, dir=folder)
    if make_dir:
        return Path(tempfile.mkdtemp(**args))
    fd, name = tempfile.mkstemp(**args)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file; rename it to `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp(path, ".tmp", make_dir=False)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp_path, path)
    except OSError as err:
        if err.errno in NO_SPACE:  # name the output, not the temporary file (or nothing, as write() does)
            raise OSError(err.errno, os.strerror(err.errno), str(path)) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory; swap it in for `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = _new_temp(path, ".tmp", make_dir=True)
    try:
        yield tmp_dir
        os.chmod(tmp_dir, 0o755)  # mkdtemp makes it private; outputs are ordinary folders
        # rename() cannot replace a non-empty directory: move the old one aside first.
        trash = None
        if path.exists():
            trash = _new_temp(path, ".old", make_dir=True)
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


@contextlib.contextmanager
def scratch_dir(name: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary working folder (a stage's intermediate files), removed when the block ends."""
    tmp_dir = _new_temp(Path(name), ".tmp", make_dir=True)
    try:
        yield tmp_dir
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write a small metrics/metadata JSON file, keys in a stable order."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
