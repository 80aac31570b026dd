"""Atomic outputs: the new content or the old one, never a half-written file, no leftovers."""
from __future__ import annotations

import json
import os
import stat

import pytest

from stages import tidy
from stages.lib.atomic import LEFTOVER, atomic_dir, atomic_path, sweep_leftovers, write_json


class Boom(Exception):
    pass


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible before the block ends
    assert target.read_text() == "new"
    assert mode(target) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("existed", [True, False])
def test_atomic_path_failure_keeps_old_content(tmp_path, existed):
    target = tmp_path / "out.txt"
    if existed:
        target.write_text("old")
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise Boom
    if existed:
        assert target.read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_atomic_dir_success_replaces_non_empty_dir(tmp_path):
    target = tmp_path / "out"
    (target / "sub").mkdir(parents=True)
    (target / "old.txt").write_text("old")
    (target / "sub" / "deep.txt").write_text("deep")
    with atomic_dir(target) as tmp:
        assert tmp.is_dir() and list(tmp.iterdir()) == []
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # old output still in place during the block
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert (target / "new.txt").read_text() == "new"
    assert mode(target) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or trash dirs left


def test_atomic_dir_success_without_previous(tmp_path):
    target = tmp_path / "nested" / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("a")
    assert (target / "a").read_text() == "a"
    assert mode(target) == 0o755
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"]


@pytest.mark.parametrize("existed", [True, False])
def test_atomic_dir_failure_keeps_old_dir(tmp_path, existed):
    target = tmp_path / "out"
    if existed:
        target.mkdir()
        (target / "old.txt").write_text("old")
    with pytest.raises(Boom):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise Boom
    if existed:
        assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
        assert (target / "old.txt").read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_write_json(tmp_path):
    target = tmp_path / "metrics" / "m.json"
    write_json(target, {"b": 1, "a": [1.5, "x"], "é": "ü"})
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == {"b": 1, "a": [1.5, "x"], "é": "ü"}
    assert text.endswith("\n")
    assert text.index('"a"') < text.index('"b"')  # stable key order
    assert mode(target) == 0o644
    write_json(target, {"c": 2})
    assert json.loads(target.read_text()) == {"c": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.json"]


def test_write_json_failure_keeps_old_file(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json(target, {"a": object()})  # not serializable: fails before anything is written
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_a_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path):
    """SIGKILL skips every cleanup: the next write of the same output removes its temporary siblings."""
    target = tmp_path / "out"
    (tmp_path / ".out.abc123.tmp").mkdir()  # a half-written output
    (tmp_path / ".out.abc123.tmp" / "part-00000.parquet").write_text("half")
    (tmp_path / ".out.def456.old").mkdir()  # the old output moved aside
    (tmp_path / ".out.ghi789.tmp").write_text("half a file")
    (tmp_path / ".other.abc123.tmp").write_text("another output's")
    (tmp_path / ".out.notes").write_text("not ours: no .tmp/.old suffix")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc123.tmp", ".out.notes", "out"]
    with atomic_path(tmp_path / "other") as tmp:
        tmp.write_text("x")
    assert not (tmp_path / ".other.abc123.tmp").exists()


def test_a_failed_final_rename_puts_the_old_dir_back(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):  # the new output's rename into place
            raise OSError("disk trouble")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk trouble"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_temporary_names_carry_the_writer_pid(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        assert LEFTOVER.match(tmp.name) and LEFTOVER.match(tmp.name).group(1) == str(os.getpid())
        tmp.write_bytes(b"x")
    with atomic_dir(tmp_path / "folder") as tmp_dir:
        assert LEFTOVER.match(tmp_dir.name).group(1) == str(os.getpid())


def test_sweep_removes_only_a_dead_writers_leftovers(tmp_path):
    dead = tmp_path / ".clean.999999999.ab_cd12.tmp"  # above any pid_max: that process cannot exist
    (dead / "part").mkdir(parents=True)
    (dead / "part/0.parquet").write_bytes(b"partial")
    dead_file = tmp_path / ".model.pt.999999999.xyz.old"
    dead_file.write_bytes(b"old")
    alive = tmp_path / f".pack.{os.getpid()}.qwerty.tmp"  # a stage writing right now
    alive.mkdir()
    keep = [tmp_path / "model.pt", tmp_path / ".notes.tmp", tmp_path / ".hidden"]
    for path in keep:
        path.write_text("mine")
    removed = sweep_leftovers([tmp_path])
    assert sorted(removed) == sorted([dead, dead_file])
    assert not dead.exists() and not dead_file.exists()
    assert alive.is_dir() and all(path.exists() for path in keep)


def test_tidy_sweeps_the_folders_of_the_pipeline_outputs(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: x\n    outs: [data/interim/clean]\n    metrics:\n      - metrics/a.json:\n"
        "          cache: false\n")
    for folder in ("data/interim", "metrics", "data/raw"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / ".x.999999999.abc.tmp").write_text("partial")
    monkeypatch.chdir(tmp_path)
    tidy.main()
    assert not (tmp_path / "data/interim/.x.999999999.abc.tmp").exists()
    assert not (tmp_path / "metrics/.x.999999999.abc.tmp").exists()
    assert (tmp_path / "data/raw/.x.999999999.abc.tmp").exists()  # the user's files are not ours to touch
