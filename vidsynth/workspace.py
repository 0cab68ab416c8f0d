"""The folders VidSynth's commands use by default, relative to the folder they run in.

README's commands run in the project's folder: ``download_models.sh`` fills ``checkpoints/`` there,
the shipped configs and profiles are in ``configs/``, and results go to ``outputs/``. Nothing is
found relative to where the package itself is installed, so an installed VidSynth (``pip install .``)
works in any folder that has these (or with explicit paths).
"""

from pathlib import Path

CHECKPOINTS = Path("checkpoints")  # model folders: SD-1.x, ControlNets, depth and CLIP models
CONFIGS = Path("configs")  # shipped configs; inference.py's --profile NAME is configs/NAME.yaml
OUTPUTS = Path("outputs")  # results, unless a command is told otherwise
