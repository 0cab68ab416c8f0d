"""One cell's work: ``vidsynth.inference`` (an edit) or ``vidsynth.animate`` (an image entry's still) on the
cell's config, then the metrics of what it made, in one process.

Scoring runs here, in the cell's own process, not in the experiment's driver: CLIP is loaded by the
cell that uses it and freed when the cell ends, and the peak memory :mod:`~.stage` measures around this
module is the cell's own (its edit or animation and its scoring), whichever cells ran before it or beside it.
An animation is scored as ``python -m vidsynth.evaluate`` scores it: image alignment in place of text alignment.

    python -m vidsynth.experiment.edit_cell inference|animate CONFIG CLIP_MODEL ROWS_JSON
"""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.experiment.edit_cell",
        description="Edit (or animate) one experiment cell, then score what it made.",
    )
    parser.add_argument("command", choices=("inference", "animate"), help="the command the cell runs")
    parser.add_argument("config", help="the cell's config for that command (its out is the cell's folder)")
    parser.add_argument("clip_model", help="CLIP for the metrics: a hub id or a local folder")
    parser.add_argument("rows", help="JSON file the metrics' rows are written to")
    args = parser.parse_args(argv)
    import torch

    from vidsynth.config import AnimateConfig, InferenceConfig, load_config
    from vidsynth.errors import VidSynthError
    from vidsynth.evaluation.evaluate import evaluate
    from vidsynth.media.writers import write_json

    if args.command == "animate":
        from vidsynth.animate import main as run

        schema = AnimateConfig
    else:
        from vidsynth.inference import main as run

        schema = InferenceConfig
    run(["--config", args.config])
    out = load_config(schema, [args.config]).out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        rows = evaluate([out], args.clip_model, device=device, progress=False)
    except VidSynthError as err:
        raise VidSynthError(f"evaluation: {err}") from err
    write_json(Path(args.rows), rows)


if __name__ == "__main__":
    from vidsynth.cli import run_main

    run_main(main)
