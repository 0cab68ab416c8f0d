"""One command of a job as a child process: how it starts, how it is stopped, what it last printed.

It starts in a process group of its own (so a cancel reaches its children too) that ends with the app
(:func:`~vidsynth.commands.die_with_parent`), writes its events to the file the queue names
(:mod:`vidsynth.events`) and its terminal output to a log, whose last lines explain a command that died
without a word. Stopping it is what Ctrl-C does at a terminal, then a kill after :data:`GRACE_S`.
"""

import os
import signal
import subprocess
import threading
from pathlib import Path

from vidsynth import events
from vidsynth.commands import child_env, die_with_parent

GRACE_S = 10.0  # seconds a cancelled command gets to clean up after Ctrl-C's signal before it is killed
LOG_LINES = 40
_LOG_TAIL_BYTES = 16384


def start(args: list[str], feed: Path, log: Path) -> subprocess.Popen:
    """Start ``args`` with its events going to ``feed`` and its output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            args,
            env={**child_env(), "PYTHONUNBUFFERED": "1", events.ENV: str(feed)},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a cancel stops its children too
            preexec_fn=die_with_parent,  # and it ends if the app is killed
        )


def interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C's signal to the process group now, a kill after :data:`GRACE_S` if it is still running."""
    _signal_group(process, signal.SIGINT)
    timer = threading.Timer(GRACE_S, _signal_group, (process, signal.SIGKILL))
    timer.daemon = True
    timer.start()


def last_lines(log: Path) -> list[str]:
    """The last lines of a command's output, each tqdm redraw (``\\r``) a line of its own."""
    with log.open("rb") as file:
        file.seek(max(0, log.stat().st_size - _LOG_TAIL_BYTES))
        text = file.read().decode("utf-8", errors="replace")
    return [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()][-LOG_LINES:]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
