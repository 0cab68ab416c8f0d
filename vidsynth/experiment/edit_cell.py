"""One cell's edit stage: ``vidsynth.inference`` on the cell's config, then the edits' metrics, in one process.

Scoring runs here, in the cell's own process, not in the experiment's driver: CLIP is loaded by the
cell that uses it and freed when the cell ends, and the peak memory :mod:`~.stage` measures around this
module is the cell's own (its edit and its scoring), whichever cells ran before it or beside it.

    python -m vidsynth.experiment.edit_cell CONFIG CLIP_MODEL ROWS_JSON
"""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.experiment.edit_cell", description="Edit one experiment cell, then score its edits."
    )
    parser.add_argument("config", help="the cell's inference.py config (its out is the cell's folder)")
    parser.add_argument("clip_model", help="CLIP for the metrics: a hub id or a local folder")
    parser.add_argument("rows", help="JSON file the metrics' rows are written to")
    args = parser.parse_args(argv)
    import torch

    from vidsynth.config import InferenceConfig, load_config
    from vidsynth.errors import VidSynthError
    from vidsynth.evaluation.evaluate import evaluate
    from vidsynth.inference import main as edit
    from vidsynth.media.writers import write_json

    edit(["--config", args.config])
    out = load_config(InferenceConfig, [args.config]).out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        rows = evaluate([out], args.clip_model, device=device, progress=False)
    except VidSynthError as err:
        raise VidSynthError(f"evaluation: {err}") from err
    write_json(Path(args.rows), rows)


if __name__ == "__main__":
    from vidsynth.cli import run_main

    run_main(main)
