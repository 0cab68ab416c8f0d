"""One run at a time in an experiment folder: a lock that a second run checks, and that dies with its holder.

Two runs on one folder would tune and edit the same cells at once, each overwriting the other's files.
The lock is ``fcntl.flock`` on ``<out>/.lock``: the operating system releases it when the process that
holds it ends, however it ends (even by SIGKILL), so a killed run never leaves a stale lock behind. The
file stays (removing it would let two runs lock two different files); it holds the holder's process id.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

from vidsynth.errors import VidSynthError

LOCK_FILE = ".lock"


def lock_folder(out: Path) -> IO:
    """Lock ``out`` for this process (creating it) and return the open lock file; refuse if another run holds it.

    Keep the returned file open for as long as the run lasts: closing it (or exiting) releases the lock.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock = (out / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise VidSynthError(
            f"an experiment is already running in {out} (pid {holder}). Wait for it to end, or pass another --out"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock
