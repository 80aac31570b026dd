"""Atomic outputs: the new content or the old one, never a half-written file, no leftovers."""
from __future__ import annotations

import json
import os
import stat

import pytest

from stages.lib.atomic import LEFTOVER, SCRATCH, atomic_dir, atomic_path, scratch_dir, sweep_scratch, write_json
from stages.lib.errors import run_stage


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
    target = tmp_path / "out"  # outside the working folder: temporary siblings
    (tmp_path / ".out.999999999.abc123.tmp").mkdir()  # a half-written output
    (tmp_path / ".out.999999999.abc123.tmp" / "part-00000.parquet").write_text("half")
    (tmp_path / ".out.999999999.def456.old").mkdir()  # the old output moved aside
    (tmp_path / ".out.999999999.ghi789.tmp").write_text("half a file")
    (tmp_path / ".other.999999999.abc123.tmp").write_text("another output's")
    (tmp_path / ".out.notes").write_text("not ours: no .tmp/.old suffix")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.999999999.abc123.tmp", ".out.notes", "out"]
    with atomic_path(tmp_path / "other") as tmp:
        tmp.write_text("x")
    assert not (tmp_path / ".other.999999999.abc123.tmp").exists()


def test_inside_the_project_temporary_files_live_in_the_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with atomic_dir("data/interim/clean") as out, atomic_dir("reports/clean") as report:
        # Two outputs with one name: their temporary folders differ, by path.
        assert out.parent == report.parent == tmp_path / SCRATCH
        assert out.name.startswith("data%2Finterim%2Fclean.") and report.name.startswith("reports%2Fclean.")
        (out / "part.parquet").write_text("new")
        assert not (tmp_path / "data/interim/clean").exists()
    with atomic_path("metrics/m.json") as tmp:
        assert tmp.parent == tmp_path / SCRATCH
        tmp.write_text("{}")
    assert (tmp_path / "data/interim/clean/part.parquet").read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "data/interim").iterdir()) == ["clean"]
    assert list((tmp_path / SCRATCH).iterdir()) == []


def test_the_next_write_of_an_output_removes_its_dead_writers_scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / SCRATCH
    scratch.mkdir(parents=True)
    dead = scratch / "data%2Fshards.999999999.abc.tmp"
    (dead / "part").mkdir(parents=True)
    other = scratch / "metrics%2Fm.json.999999999.def.tmp"
    other.write_text("another output's")
    with atomic_dir("data/shards") as tmp:
        (tmp / "x").write_text("x")
    assert not dead.exists() and other.exists()


def test_a_scratch_dir_is_removed_when_its_block_ends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Boom):
        with scratch_dir("data/interim/clean-pass1") as work:
            assert work.parent == tmp_path / SCRATCH
            (work / "part").write_text("x")
            raise Boom
    assert list((tmp_path / SCRATCH).iterdir()) == []


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


def test_sweep_removes_only_a_dead_writers_scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / SCRATCH
    dead = scratch / "data%2Finterim%2Fclean.999999999.ab_cd12.tmp"  # above any pid_max: that process cannot exist
    (dead / "part").mkdir(parents=True)
    (dead / "part/0.parquet").write_bytes(b"partial")
    dead_file = scratch / "artifacts%2Fcheckpoints%2Fmodel.pt.999999999.xyz.old"
    dead_file.write_bytes(b"old")
    alive = scratch / f"data%2Fshards.{os.getppid()}.qwerty.tmp"  # a stage writing right now
    alive.mkdir()
    keep = [scratch / "notes.tmp", scratch / ".hidden"]
    for path in keep:
        path.write_text("mine")
    removed = sweep_scratch()
    assert sorted(removed) == sorted([dead, dead_file])
    assert not dead.exists() and not dead_file.exists()
    assert alive.is_dir() and all(path.exists() for path in keep)


def test_every_stage_sweeps_the_scratch_folder_as_it_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    leftover = tmp_path / SCRATCH / ".cache%2Ftrain%2Fresume.pt.999999999.abc.tmp"  # a kill during a save
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    seen = []
    run_stage(lambda: seen.append(leftover.exists()))
    assert seen == [False]
