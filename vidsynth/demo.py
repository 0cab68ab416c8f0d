"""The whole pipeline, offline, in a few minutes: ``python -m vidsynth.demo``.

1. model: ``checkpoints/stable-diffusion-v1-4`` if it is there (``download_models.sh`` puts it
   there); otherwise the SD-1.x model named ``tiny``, *random* weights built once, so everything runs
   with no network and no GPU (the pictures are then noise-like: the point is to see every stage work);
2. clip: a procedurally rendered scene with a tone as its sound track (nothing to download);
3. tune: ``train.py`` for a few steps on windows of that clip;
4. edit: ``inference.py`` with two prompts over the whole clip, every frame at the source frame rate
   (the UNet in windows), writing MP4s with the sound put back and a GIF grid.

The stages run the same commands a user runs, in subprocesses, so the demo also proves them.
"""

import argparse
import logging
import shlex
import subprocess
import time
from pathlib import Path

from vidsynth.cli import run_main
from vidsynth.commands import child_env, command
from vidsynth.errors import VidSynthError
from vidsynth.workspace import CHECKPOINTS

logger = logging.getLogger("vidsynth.demo")

REAL_MODEL = CHECKPOINTS / "stable-diffusion-v1-4"
# Tuning settings on top of configs/clip.yaml's (the defaults): a short clip, a few steps.
TUNING = (
    "train_data.prompt=a red ball is rolling across a field under a blue sky",  # describes the rendered scene
    "train_data.n_sample_frames=8",  # the window: 8 of the scene's 16 frames per step
    "train_data.sample_frame_rate=1",  # every frame: the edit covers the whole scene at its frame rate
    "train_data.window_sampling=random",  # each step a window drawn anywhere in the scene
    "checkpointing_steps=1000",  # no checkpoints for a 10-step run
    "validation_steps=1000",  # the demo renders its edits with inference.py instead
    "learning_rate=3e-5",
    "seed=33",
    "overwrite=true",  # the demo's own run folder is rebuilt on every run
)
PROMPTS = ("a blue ball is rolling across the snow, cartoon style", "a red ball is rolling on the beach at sunset")


def stage(name: str, timings: dict, command: list[str]) -> None:
    """Run one stage's command (its progress bars go to the terminal) and time it."""
    logger.info("%s: %s", name, shlex.join(["python", *command[1:]]))
    start = time.perf_counter()
    result = subprocess.run(command, env=child_env())
    timings[name] = time.perf_counter() - start
    if result.returncode != 0:
        raise VidSynthError(f"the demo's {name} stage failed (exit {result.returncode}); its log is above")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidsynth.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/demo", help="demo folder (default outputs/demo)")
    parser.add_argument("--model", default=str(REAL_MODEL), help="SD-1.x folder to use if present")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="DDIM inversion and sampling steps")
    args = parser.parse_args(argv)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    model = Path(args.model)
    if (model / "model_index.json").is_file():
        size, label = 256, f"real SD weights from {model}"
        logger.info("Using %s. On a CPU each stage takes many minutes; a GPU is recommended", model)
    else:
        from vidsynth.testing.tiny_models import TINY, resolve_model

        model = resolve_model(TINY)
        size, label = 128, "a tiny checkpoint with RANDOM weights (pictures are noise-like)"
        logger.warning("No SD weights in %s: using %s. Run ./download_models.sh for real edits", args.model, label)
    timings["model"] = time.perf_counter() - start

    start = time.perf_counter()
    from vidsynth.media.scene import render_scene

    clip = render_scene(out / "scene.mp4", num_frames=16, width=size, height=size, fps=8.0, audio_channels=2)
    timings["clip"] = time.perf_counter() - start
    logger.info("Rendered the demo clip %s (16 frames, 8 fps, stereo tone)", clip)

    run = out / "run"
    stage(
        "tune",
        timings,
        command(
            "train",
            *TUNING,
            f"pretrained_model_path={model}",
            f"output_dir={run}",
            f"train_data.video_path={clip}",
            f"train_data.width={size}",
            f"train_data.height={size}",
            f"max_train_steps={args.train_steps}",
        ),
    )
    edits = out / time.strftime("edits-%Y%m%d-%H%M%S")
    edit = command("inference", "--run", str(run), "--out", str(edits), "--steps", str(args.steps))
    edit += ["--frames", "all", "--stride", "1"]  # the whole scene at its own frame rate
    edit += ["--inversion-steps", str(args.steps)]
    for prompt in PROMPTS:
        edit += ["--prompt", prompt]
    stage("edit", timings, edit)

    files = sorted(p for p in edits.iterdir() if p.suffix in (".mp4", ".gif"))
    if not files:
        raise VidSynthError(f"the edit stage wrote no MP4 or GIF into {edits}")
    print(f"\nVidSynth demo with {label}:")
    for path in files:
        print(f"  {path}")
    print("Time per stage: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    print(f"Total: {sum(timings.values()):.1f} s. Open the GIF for the side-by-side view; the MP4s carry the sound.")


if __name__ == "__main__":
    run_main(main)
