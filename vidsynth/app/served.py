"""What the app serves of the outputs folder: clips and results, never checkpoints, configs, models or the queue.

The page shows a file through a copy Gradio makes in its cache. Gradio copies only files under its
``allowed_paths`` (or the current folder), so the outputs folder is one of them; but then Gradio also
serves the whole folder by URL (``/gradio_api/file=<path>``): tuned weights, checkpoints, configs that
name absolute paths, the tiny models, the job queue. ``allowed_paths`` and ``blocked_paths`` name whole
folders, and runs appear while the app runs, so :class:`ServedFiles`, in front of Gradio, refuses every
file URL into the outputs folder but those :func:`servable` names: the clips, the stills animations
start from, and the videos, grids, sidecars and metrics of edits, validation samples, animations and
samples of from-scratch runs (:data:`RESULT_SUFFIXES`).
"""

import os
import re
from pathlib import Path

from starlette.responses import PlainTextResponse

from vidsynth.media.video import VIDEO_SUFFIXES

RESULT_SUFFIXES = frozenset({".mp4", ".gif", ".png", ".json", ".md"})
_FILE_URL = re.compile(r"/gradio_api/file[=/](?P<path>.*)")


def servable(path: Path, outputs: Path) -> bool:
    """Whether ``path`` (absolute, resolved) is a clip or a result in ``outputs`` (resolved)."""
    parts = path.relative_to(outputs).parts
    if any(part.startswith(".") for part in parts):  # temporaries, the models, the queue
        return False
    if len(parts) == 2 and parts[0] == "clips":
        return path.suffix.lower() in VIDEO_SUFFIXES
    if len(parts) == 2 and parts[0] == "stills":  # what an animation starts from, as the app keeps it
        return path.suffix.lower() == ".png"
    if len(parts) >= 3 and parts[0] == "animations":  # animations/<time>/...
        return path.suffix.lower() in RESULT_SUFFIXES
    if parts[0] == "scratch":  # scratch/<run>/generated/<time>/... and scratch/<run>/samples/<stage>-<step>/...
        return len(parts) >= 5 and parts[2] in ("generated", "samples") and path.suffix.lower() in RESULT_SUFFIXES
    # <run>/edits/<edit>/... and <run>/samples/sample-<step>/...
    return len(parts) >= 4 and parts[1] in ("edits", "samples") and path.suffix.lower() in RESULT_SUFFIXES


class ServedFiles:
    """ASGI middleware: a file URL into ``outputs`` that is not :func:`servable` is refused (403)."""

    def __init__(self, app, outputs: Path):
        self.app, self.outputs = app, Path(outputs).resolve()

    def allows(self, url_path: str) -> bool:
        match = _FILE_URL.search(url_path)
        if match is None:
            return True
        path = Path(os.path.abspath(match["path"])).resolve()  # as Gradio reads it: from the current folder
        return not path.is_relative_to(self.outputs) or servable(path, self.outputs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self.allows(scope["path"]):
            await PlainTextResponse("File not allowed.", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
