"""Starting VidSynth's own commands in child processes (the app's jobs, experiment stages, the demo).

A child runs ``python -m vidsynth.<command>`` with this interpreter, so it is found through the
package that is running now (installed, or a checkout on ``PYTHONPATH``), not through a path to a
script; its ``PYTHONPATH`` names the folder this package was imported from, so a checkout that is not
installed works the same from any folder.
"""

import os
import sys
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # the folder that holds this vidsynth package


def command(name: str, *args: str) -> list[str]:
    """The argv of ``python -m vidsynth.<name> args...`` (``name``: train, inference, evaluate, ...)."""
    return [sys.executable, "-m", f"vidsynth.{name}", *args]


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this package's folder first on ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get("PYTHONPATH")]))
    return env
