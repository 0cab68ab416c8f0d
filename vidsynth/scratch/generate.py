"""The sample command: clips from a trained run, with per-frame labels, written as MP4s, a captioned GIF and a sidecar.

    python -m vidsynth.scratch sample --run DIR [--labels walking:8,sitting:8 | --labels FILE.csv | --label NAME]
        [--num N] [--steps K] [--seed X] [--fps F] [--out DIR]

The run, the labels (names the model knows, none for an unconditional model) and the output folder are
checked before any model loads. A class-conditional model sampled without labels gives sample n the n-th
class for the whole clip. The output folder (``--out``, new or empty; default ``outputs/scratch/<time>``)
appears when every file in it is complete: ``<n>.mp4`` at ``--fps`` (default: the frame rate of the
training windows), ``grid.gif`` with each sample's labels as its caption, and ``samples.json``.
"""

import argparse
import logging
from pathlib import Path

from vidsynth import events
from vidsynth.errors import VidSynthError
from vidsynth.scratch.request import frame_labels, label_runs
from vidsynth.workspace import OUTPUTS, new_output_folder

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.scratch sample", description="Sample clips from a model trained from scratch."
    )
    parser.add_argument("--run", required=True, help="the run folder (output_dir of the training)")
    parser.add_argument("--labels", help="per-frame labels: name:count runs (walking:8,sitting:8) or a CSV/NPY file")
    parser.add_argument("--label", help="one label for every frame of the clip")
    parser.add_argument("--num", type=int, default=4, help="clips to make (default 4)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: the labels' count, else the run's)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of every stage (default 50)")
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start noise (default 0)")
    parser.add_argument("--fps", type=float, help="frame rate of the MP4s (default: the training windows')")
    parser.add_argument("--stage", help="the last stage to run (default: the last trained one)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    parser.add_argument("--out", help="output folder, new or empty (default outputs/scratch/<time>)")
    return parser.parse_args(argv)


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("num", "steps", "frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise VidSynthError(f"--{name} must be at least 1, got {value}")
    if not args.guidance >= 1:
        raise VidSynthError(f"--guidance must be 1 (no guidance) or more, got {args.guidance:g}")
    if args.fps is not None and not args.fps > 0:
        raise VidSynthError(f"--fps must be more than 0, got {args.fps:g}")


def plan_labels(labels, class_names: list[str] | None, num: int, frames: int) -> tuple[list, list[str]]:
    """The labels of each sample and its caption: as asked, the n-th class for sample n, or none."""
    if labels is None and class_names is None:
        return [None] * num, [f"sample {n}" for n in range(num)]
    if labels is None:
        chosen = [[class_names[n % len(class_names)]] * frames for n in range(num)]
    elif isinstance(labels, list):
        chosen = [labels] * num
    else:
        return [labels] * num, ["label vectors"] * num
    return chosen, [label_runs(names) for names in chosen]


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    _check_counts(args)
    from vidsynth.scratch.sample import read_run

    folder, config, footage = read_run(args.run)
    fps = args.fps or footage["fps"]
    labels = frame_labels(args.labels, args.label, footage, args.frames or config.data.num_frames, fps)
    if labels is not None and args.frames and len(labels) != args.frames:
        raise VidSynthError(f"--labels give {len(labels)} frames but --frames is {args.frames}. Make them agree")
    frames = len(labels) if labels is not None else args.frames or config.data.num_frames
    per_sample, captions = plan_labels(labels, footage["class_names"], args.num, frames)
    out = new_output_folder(args.out, OUTPUTS / "scratch")

    from vidsynth.atomic import atomic_path
    from vidsynth.device import resolve_device
    from vidsynth.media.writers import write_gif_grid, write_json, write_video
    from vidsynth.scratch.sample import load_run, sample_cascade

    run = load_run(folder.root, resolve_device(args.device))
    stage = args.stage or run.stages[-1][0].name
    logger.info("Sampling %d clip(s) of %d frames up to stage %s, %d DDIM steps", args.num, frames, stage, args.steps)
    with events.stage("sampling"):
        clips = sample_cascade(run, per_sample, frames, args.steps, args.seed, stage, args.guidance)
    videos = [(clip.permute(1, 0, 2, 3) + 1) / 2 for clip in clips]  # each (3, F, S, S) in [0, 1]
    with atomic_path(out, folder=True) as partial:
        for n, video in enumerate(videos):
            write_video(partial / f"{n}.mp4", video, fps)
        write_gif_grid(partial / "grid.gif", list(zip(captions, videos, strict=True)), fps)
        record = {"run": str(run.root), "stage": stage, "size": int(clips.shape[-1]), "frames": frames, "fps": fps}
        record |= {
            "steps": args.steps,
            "seed": args.seed,
            "guidance": args.guidance,
            "asked": args.labels or args.label,
        }
        record["samples"] = [{"file": f"{n}.mp4", "labels": caption} for n, caption in enumerate(captions)]
        write_json(partial / "samples.json", record)
    logger.info("Wrote %d clip(s) to %s", len(videos), out)
    events.emit("done", output=str(out))
    return out
