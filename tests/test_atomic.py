"""Atomic writes: a result appears complete or not at all, with the usual modes; killed runs' temporaries go."""

import os
import subprocess
import sys

import pytest

from vidsynth.atomic import atomic_path, remove_stale_partials


def test_a_file_appears_only_when_complete_and_a_failure_keeps_the_old_one(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        assert path.read_text() == "old" and tmp.name.startswith(".result.") and tmp.suffix == ".json"
        raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["result.json"]
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["result.json"]


def test_a_folder_replaces_only_an_empty_one_unless_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with atomic_path(out, folder=True) as tmp:
        (tmp / "a.txt").write_text("a")
    assert os.listdir(out) == ["a.txt"]
    with pytest.raises(OSError), atomic_path(out, folder=True) as tmp:
        (tmp / "b.txt").write_text("b")
    assert os.listdir(out) == ["a.txt"] and os.listdir(tmp_path) == ["out"]
    with atomic_path(out, folder=True, replace=True) as tmp:
        (tmp / "b.txt").write_text("b")
    assert os.listdir(out) == ["b.txt"]


def test_results_are_readable_like_any_file_even_when_the_writer_made_them_private(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "r.bin") as tmp:
            tmp.write_bytes(b"x")
            os.chmod(tmp, 0o600)  # what tempfile-style writers create
        with atomic_path(tmp_path / "folder", folder=True) as tmp:
            (tmp / "f").write_bytes(b"x")
            os.chmod(tmp / "f", 0o600)
            os.chmod(tmp, 0o700)
    finally:
        os.umask(umask)
    assert (tmp_path / "r.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "folder" / "f").stat().st_mode & 0o777 == 0o644


def test_only_temporaries_of_ended_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f".grid.{int(dead.stdout)}-0123abcd.partial.gif"
    gone.write_bytes(b"")
    gone_folder = tmp_path / f".out.{int(dead.stdout)}-89abcdef.partial"
    gone_folder.mkdir()
    with atomic_path(tmp_path / "live.gif") as live:
        live.write_bytes(b"")
        kept = [tmp_path / ".hidden", tmp_path / "x.partial", live]
        for path in kept[:2]:
            path.write_bytes(b"")
        assert sorted(remove_stale_partials(tmp_path)) == sorted([gone, gone_folder])
        assert all(path.exists() for path in kept)
