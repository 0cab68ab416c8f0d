"""Writing files and folders atomically: the one place that knows temp-then-rename.

Every result VidSynth writes (MP4s, GIFs, JSON, configs, trained parameters, checkpoints, output
folders) goes through :func:`atomic_path`, so a crash, a Ctrl-C or a bad input never leaves a
half-written result under its real name, and never replaces an earlier result with a broken one.
Temporaries are hidden names containing ``.partial`` and the writer's process id;
:func:`remove_stale_partials` clears the ones whose process is gone (a killed run), and leaves those
that a run still going is writing.
"""

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

PARTIAL_MARK = ".partial"
_PARTIAL = re.compile(r"\.(\d+)-[0-9a-f]{8}\.partial")  # .<pid>-<random>.partial
# Results are for the user (and whoever they share a machine with) to read: 0644 files, 0755 folders,
# as a plain ``open()``/``mkdir`` under the usual umask gives. Temporary-file helpers create 0600.
_FILE_MODE, _DIR_MODE = 0o644, 0o755


def partial_name(path: Path) -> Path:
    """The hidden temporary next to ``path``: same suffix, so tools pick the right format."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}{PARTIAL_MARK}{path.suffix}")


def check_writable(path: str | os.PathLike, fix: str = "Choose a writable place for it") -> None:
    """Fail with one line, before anything is written, when ``path`` cannot be created: a file where one of
    its folders should be, or a folder this process may not write in (read-only, another user's)."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if existing != path and not existing.is_dir():
        raise VidSynthError(f"cannot create {path}: {existing} is a file, not a folder. {fix}")
    folder = existing if existing != path else path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VidSynthError(f"cannot create {path}: {folder} is read-only for this user. {fix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, folder: bool = False, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block completes.

    ``folder``: the temporary is created as an empty folder for the block to fill. ``replace``: an
    existing folder at ``path`` is removed just before the rename (files are always replaced; an
    *empty* folder always is). When the block raises, the temporary is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    if folder:
        tmp.mkdir()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {path}")
        _make_readable(tmp)
        if path.is_dir() and not path.is_symlink():
            if replace:
                shutil.rmtree(path)
            elif not any(path.iterdir()):
                path.rmdir()
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _make_readable(tmp: Path) -> None:
    """Give results the usual modes (tempfile-style writers and some libraries create 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    if tmp.is_dir():
        for root, _dirs, files in os.walk(tmp):
            os.chmod(root, _DIR_MODE & ~umask)
            for name in files:
                os.chmod(os.path.join(root, name), _FILE_MODE & ~umask)
    else:
        os.chmod(tmp, _FILE_MODE & ~umask)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries in ``folder`` (not recursive) whose writing process has ended; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [
        p
        for p in folder.iterdir()
        if p.name.startswith(".") and (m := _PARTIAL.search(p.name)) and _process_gone(int(m[1]))
    ]
    for path in stale:
        logger.info("Removing %s, left by a run that was killed while writing it", path)
        _remove(path)
    return stale


def discard(path: str | os.PathLike) -> None:
    """Remove a file or folder so that nothing half-removed is ever seen under its name.

    It is renamed to a temporary first: a run stopped while deleting leaves a stale temporary, which
    :func:`remove_stale_partials` clears, never a half folder that looks complete.
    """
    path = Path(path)
    doomed = partial_name(path)
    os.replace(path, doomed)
    _remove(doomed)
