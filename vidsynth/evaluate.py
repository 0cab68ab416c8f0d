"""``python -m vidsynth.evaluate``: score edited clips (see :mod:`vidsynth.evaluation.evaluate`)."""

from vidsynth.cli import run_main
from vidsynth.evaluation.evaluate import main

if __name__ == "__main__":
    run_main(main)
