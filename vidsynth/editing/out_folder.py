"""Where an edit's results go: the folder asked for (new or empty, never overwritten), else a new time-stamped one.

The default is ``<run>/edits/<time>`` for a tuning run's edits (the app and experiments list them
there), else ``outputs/edits/<time>`` in the folder the command runs in.
"""

import datetime
from pathlib import Path

from vidsynth.atomic import check_writable
from vidsynth.config.inference import InferenceConfig
from vidsynth.errors import VidSynthError
from vidsynth.workspace import OUTPUTS


def resolve_out(config: InferenceConfig) -> Path:
    """The output folder: new, or empty. Default: a time-stamped folder under the run (or outputs/edits)."""
    if config.out:
        out = Path(config.out).expanduser().absolute()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise VidSynthError(f"{out} already holds files; results are never overwritten. Pass another --out")
        check_writable(out, "Pass another --out")
        return out
    root = Path(config.run).absolute() / "edits" if config.run else (OUTPUTS / "edits").absolute()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = root / stamp, 1
    while out.exists():
        n += 1
        out = root / f"{stamp}-{n}"
    return out
