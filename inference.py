"""Edit a clip with new prompts: the script users know, over :mod:`vidsynth.inference`.

    python inference.py --run outputs/man-skiing --prompt "spider man is skiing on the beach, cartoon style"

The same command is ``python -m vidsynth.inference`` wherever the package is installed;
``python inference.py --help`` lists every option.
"""

from vidsynth.cli import run_main
from vidsynth.inference import main

if __name__ == "__main__":
    run_main(main)
