"""Atomic writes: a result appears complete or not at all, with the usual modes; killed runs' temporaries go."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene


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


def _read_only_folder(tmp_path, monkeypatch):
    """A folder this process cannot write in. Root writes where chmod allows nothing, so for root the
    permission check is shown the folder as any other user sees it."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode: not (mode & os.W_OK and Path(path) == folder) and access(path, mode)
        )
    return folder


def test_a_path_under_a_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VidSynthError, match=r"notes\.txt is a file, not a folder\. Choose a writable place"):
        with atomic_path(tmp_path / "notes.txt" / "edits" / "a.mp4") as tmp:
            tmp.write_bytes(b"x")
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_path_in_a_read_only_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    folder = _read_only_folder(tmp_path, monkeypatch)
    with pytest.raises(VidSynthError, match="read-only for this user"):
        with atomic_path(folder / "new" / "a.mp4", folder=True):
            pass
    assert os.listdir(folder) == []


@pytest.mark.parametrize("place", ["under a file", "read-only"])
def test_an_edit_out_that_cannot_be_written_is_one_line_and_exit_2_before_any_model_loads(
    tiny_sd, tmp_path, caplog, monkeypatch, place
):
    from vidsynth import inference
    from vidsynth.cli import run_main
    from vidsynth.pipelines import loading

    monkeypatch.setattr(loading, "_build", lambda *a, **k: pytest.fail("a model was loaded"))
    clip = render_scene(tmp_path / "clip.mp4", num_frames=8, width=64, height=64, fps=8.0, audio_channels=0)
    if place == "under a file":
        parent, message = tmp_path / "clip.mp4", "clip.mp4 is a file, not a folder. Pass another --out"
    else:
        parent, message = _read_only_folder(tmp_path, monkeypatch), "is read-only for this user. Pass another --out"
    before = sorted(tmp_path.rglob("*"))
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--prompt", "a ball", "--out", str(parent / "edits")]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main(argv))
    assert exit_info.value.code == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message in line and "\n" not in line
    assert sorted(tmp_path.rglob("*")) == before
