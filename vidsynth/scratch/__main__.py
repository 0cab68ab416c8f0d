"""``python -m vidsynth.scratch train|sample|make-data``: video models trained from scratch on your own footage.

    python -m vidsynth.scratch make-data --kind shapes --out data/shapes
    python -m vidsynth.scratch train --config configs/scratch/shapes.yaml [key=value ...]
    python -m vidsynth.scratch sample --run outputs/scratch-shapes --labels left:8,right:8

Also under ``accelerate launch -m vidsynth.scratch train ...``. Each subcommand parses its own
arguments; errors are one line and exit 2 (:func:`vidsynth.cli.run_main`).
"""

import argparse
import logging
import sys

from vidsynth.cli import run_main

logger = logging.getLogger("vidsynth.scratch")

KINDS = ("shapes",)


def make_data(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.scratch make-data", description="Render a labelled synthetic footage set."
    )
    parser.add_argument("--kind", choices=KINDS, default="shapes", help="shapes: shapes moving in labelled directions")
    parser.add_argument("--out", required=True, help="a new or empty folder: videos/*.mp4 and labels.csv go there")
    parser.add_argument("--seed", type=int, default=0, help="the same seed renders the same footage (default 0)")
    parser.add_argument("--videos", type=int, default=4, help="how many videos (default 4)")
    parser.add_argument("--seconds", type=float, default=8, help="length of each video (default 8)")
    args = parser.parse_args(argv)
    from vidsynth.scratch.shapes import make_shapes

    out = make_shapes(args.out, seed=args.seed, num_videos=args.videos, seconds=args.seconds)
    logger.info("Wrote %s (videos/ and labels.csv)", out)


COMMANDS = {"train": "vidsynth.scratch.train", "sample": "vidsynth.scratch.generate"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.scratch",
        description="Video diffusion models trained from scratch on your own footage.",
        epilog="Each command has its own --help, e.g. python -m vidsynth.scratch train --help",
    )
    parser.add_argument("command", choices=[*COMMANDS, "make-data"])
    args, rest = parser.parse_known_args(argv[:1])
    if args.command == "make-data":
        make_data(argv[1:])
        return
    import importlib

    importlib.import_module(COMMANDS[args.command]).main(argv[1:])


if __name__ == "__main__":
    run_main(main)
