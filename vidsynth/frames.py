"""``python -m vidsynth.frames``: a video to numbered PNGs and back (see :mod:`vidsynth.media.frames`)."""

from vidsynth.cli import run_main
from vidsynth.media.frames import main

if __name__ == "__main__":
    run_main(main)
