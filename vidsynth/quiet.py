"""Turn down the libraries' start-up chatter; runs on import, so import it before torch and diffusers.

Importing diffusers prints a bitsandbytes kernels warning (it probes bitsandbytes even with 8-bit
Adam off) and transformers two warnings about torchvision, which this project deliberately does not
install; none of them is the user's to fix. ``vidsynth/__init__.py`` imports this module, so
``python -m vidsynth.…`` is quiet; a script that imports a library before any ``vidsynth`` module
(``train.py``) imports this first (ruff's isort keeps it in a section of its own, first).
Environment variables set by the user win.
"""

import logging
import os
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
    warnings.filterwarnings("ignore", message=r".*torchvision.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(diffusers|transformers|accelerate)\b")
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.*", category=DeprecationWarning)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


quiet_libraries()
