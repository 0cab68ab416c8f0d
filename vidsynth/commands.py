"""Starting VidSynth's own commands in child processes (the app's jobs, experiment stages, the demo).

A child runs ``python -m vidsynth.<command>`` with this interpreter, so it is found through the
package that is running now (installed, or a checkout on ``PYTHONPATH``), not through a path to a
script; its ``PYTHONPATH`` names the folder this package was imported from, so a checkout that is not
installed works the same from any folder.

A child that outlives the process that started it (killed with ``kill -9``, or crashed) would keep
writing into a folder nobody watches, and race a rerun; :func:`die_with_parent` ends it with its
parent.
"""

import ctypes
import os
import signal
import sys
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # the folder that holds this vidsynth package
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# resolved here, in the parent: a child between fork and exec should do as little as it can
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def command(name: str, *args: str) -> list[str]:
    """The argv of ``python -m vidsynth.<name> args...`` (``name``: train, inference, evaluate, ...)."""
    return [sys.executable, "-m", f"vidsynth.{name}", *args]


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this package's folder first on ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get("PYTHONPATH")]))
    return env


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess``: on Linux the child is killed (SIGKILL) when its parent dies.

    Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) fires when the *thread* that started the
    child ends, so start children from a thread that waits for them (as ``subprocess.run`` does). What a
    killed child leaves (temporaries named ``.partial``) is cleared by the next run. Elsewhere this does
    nothing.
    """
    if _PRCTL is not None and _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
