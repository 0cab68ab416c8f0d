"""Where an edit's results go: the folder asked for (new or empty, never overwritten), else a new time-stamped one.

The default is ``<run>/edits/<time>`` for a tuning run's edits (the app and experiments list them
there), else ``outputs/edits/<time>`` in the folder the command runs in.
"""

from pathlib import Path

from vidsynth.config.inference import InferenceConfig
from vidsynth.workspace import OUTPUTS, new_output_folder


def resolve_out(config: InferenceConfig) -> Path:
    """The output folder: new, or empty. Default: a time-stamped folder under the run (or outputs/edits)."""
    return new_output_folder(config.out, Path(config.run) / "edits" if config.run else OUTPUTS / "edits")
