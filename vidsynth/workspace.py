"""The folders VidSynth's commands use by default, relative to the folder they run in.

README's commands run in the project's folder: ``download_models.sh`` fills ``checkpoints/`` there,
the shipped configs and profiles are in ``configs/``, and results go to ``outputs/``. Nothing is
found relative to where the package itself is installed, so an installed VidSynth (``pip install .``)
works in any folder that has these (or with explicit paths). A result folder is new or empty, never
overwritten: :func:`new_output_folder`.
"""

import datetime
from pathlib import Path

from vidsynth.atomic import check_writable
from vidsynth.errors import VidSynthError

CHECKPOINTS = Path("checkpoints")  # model folders: SD-1.x, ControlNets, depth and CLIP models
CONFIGS = Path("configs")  # shipped configs; inference.py's --profile NAME is configs/NAME.yaml
OUTPUTS = Path("outputs")  # results, unless a command is told otherwise


def new_output_folder(asked: str | None, root: Path) -> Path:
    """The folder asked for (new, or empty: results are never overwritten), else a new ``root/<time>``."""
    if asked:
        out = Path(asked).expanduser().absolute()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise VidSynthError(f"{out} already holds files; results are never overwritten. Pass another --out")
        check_writable(out, "Pass another --out")
        return out
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = root.absolute() / stamp, 1
    while out.exists():
        n += 1
        out = root.absolute() / f"{stamp}-{n}"
    return out
