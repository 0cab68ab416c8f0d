"""Uploads: each at most ``--max-upload-mb``, and not kept forever.

Gradio refuses a larger upload itself (``launch(max_file_size=...)``); the app checks again before it
keeps a file, with the limit and the flag in the message. A kept upload (a clip in ``clips/``, a
control video in ``control-videos/``, a still in ``stills/``) is removed at start-up once it is older than
``--keep-uploads-days`` and neither a run (its ``config.yaml``) nor a job still waiting or running names
it: a run keeps its clip, which editing it reads again. Gradio's own copies (of uploads, and of the
files the page showed) are removed by Gradio a day after they were made (``delete_cache``).
"""

import json
import logging
import time
from pathlib import Path

from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

MB = 1 << 20
DAY_S = 86400


def check_upload(path: Path, max_mb: int) -> None:
    """Refuse an upload larger than ``max_mb`` MB, naming the limit and how to raise it."""
    size = path.stat().st_size if path.is_file() else 0  # a missing file gets the video reader's message
    if size > max_mb * MB:
        raise VidSynthError(
            f"the upload is {size / MB:.1f} MB, above this app's limit of {max_mb} MB. Upload a shorter or "
            f"smaller clip, or start the app with a larger --max-upload-mb"
        )


def names_in_use(outputs: Path, jobs: list[dict]) -> str:
    """The text that names every upload still needed: the configs of the runs, the animations (their stills) and
    the from-scratch runs (their footage), and the specs of unfinished ``jobs``."""
    found = sorted([*outputs.glob("*/config.yaml"), *outputs.glob("*/*/config.yaml")])  # animations/, scratch/
    configs = [path.read_text(errors="replace") for path in found]
    return "\n".join([*configs, json.dumps(jobs)])


def prune_uploads(folders: list[Path], in_use: str, max_age_days: float) -> list[Path]:
    """Remove the files of ``folders`` older than ``max_age_days`` whose name ``in_use`` does not mention."""
    cutoff = time.time() - max_age_days * DAY_S
    removed = []
    for folder in folders:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < cutoff:
                if path.name not in in_use:
                    path.unlink()
                    removed.append(path)
    if removed:
        logger.info("Removed %d upload(s) older than %g days that no run or job uses", len(removed), max_age_days)
    return removed
