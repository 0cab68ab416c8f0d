"""Turn down the libraries' start-up chatter; runs on import, so import it before torch and diffusers.

Importing diffusers prints a bitsandbytes kernels warning (it probes bitsandbytes even with 8-bit
Adam off) and transformers two warnings about torchvision, which this project deliberately does not
install; none of them is the user's to fix. ``vidsynth/__init__.py`` imports this module first, so
every command that imports ``vidsynth`` before a library is quiet. Environment variables set by the
user win.

The libraries' warnings (deprecations of their internals, torchvision notes) are hidden for the
commands only: :func:`quiet_warnings` runs when a command starts (``run_main``, and on import when
the process is ``python -m vidsynth.…``, whose module may import a library at its top), never on a
plain ``import vidsynth``, so a notebook, a script and the test suite see them (the suite's
``filterwarnings`` in ``pyproject.toml`` makes the deprecations VidSynth's own calls raise fail).
Its filters go behind any already set, and a ``-W`` option or ``PYTHONWARNINGS`` turns it off.
"""

import logging
import os
import sys
import warnings

# Libraries whose INFO/WARNING lines are not actionable for a user of these commands.
_QUIET_LOGGERS = (
    "accelerate",
    "bitsandbytes",
    "filelock",
    "httpcore",
    "httpx",
    "huggingface_hub",
    "PIL",
    "torch",
    "urllib3",
)


def quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    # transformers' "Loading weights" / "Writing model shards" bars for millisecond-long steps; also hides the
    # hub's download bars (./download_models.sh, a separate process, still shows its own).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_warnings() -> None:
    """Ignore the libraries' warnings, behind the filters already set, unless the user set warning options."""
    if sys.warnoptions:
        return
    warnings.filterwarnings("ignore", message=r".*torchvision.*", append=True)
    libraries = r"(diffusers|transformers|accelerate)\b"
    warnings.filterwarnings("ignore", category=FutureWarning, module=libraries, append=True)
    jit = r".*torch\.jit\.script_method.*"  # torch's own modules, at import
    warnings.filterwarnings("ignore", message=jit, category=DeprecationWarning, append=True)


def _started_as_command() -> bool:
    """``python -m vidsynth.…``: its package is imported while argv[0] is still ``-m``."""
    return sys.argv[:1] == ["-m"]


quiet_libraries()
if _started_as_command():
    quiet_warnings()
