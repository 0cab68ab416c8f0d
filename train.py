"""One-shot tuning of the video UNet on one clip: the script users know, over :mod:`vidsynth.train`.

    python train.py --config configs/clip.yaml [key=value ...]
    accelerate launch train.py --config configs/clip.yaml [key=value ...]

The same command is ``python -m vidsynth.train`` wherever the package is installed.
"""

from vidsynth.cli import run_main
from vidsynth.train import main

if __name__ == "__main__":
    run_main(main)
