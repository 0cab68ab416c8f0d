"""Whole-clip editing cost: time per frame and peak memory as the clip grows (full-size SD-1.4, random weights).

    python bench/long.py [--frames 24,48,96] [--size 64] [--steps 2] [--window 24] [--overlap 4]

One edit per clip length, each in its own process: the clip VAE-encoded, DDIM-inverted and sampled
with one prompt (classifier-free guidance), decoded to uint8, exactly as ``inference.py`` renders
(``vidsynth.editing.render.render_edits``), with the UNet over windows of ``--window`` frames. Prints wall
and CPU seconds per frame (CPU seconds are steadier on a machine shared with other jobs), the UNet's
frame-evaluations per frame (what the windows' overlap recomputes), and the peak resident memory
*above the loaded pipeline* (freed memory is returned to the system and the peak reset once the
models are built). Asserts nothing. The expectation: time per frame grows only by the overlap's recomputation, and the
peak above the pipeline at 96 frames is at most 1.3x that at 24 frames.
"""

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidsynth.models.windows import window_starts  # noqa: E402


def _rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(frames: int, size: int, steps: int, window: int, overlap: int) -> dict:
    """One edit of a random ``frames``-frame clip; runs in a worker process."""
    import torch

    from bench import sd14
    from vidsynth.config.inference import InferenceConfig
    from vidsynth.editing.render import encode_clip, render_edits
    from vidsynth.media.video import Clip

    pipe = sd14.pipeline()
    pipe.set_progress_bar_config(disable=True)
    pixels = np.random.default_rng(0).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)  # (F, H, W, 3)
    clip = Clip(pixels, "random", 8.0, tuple(range(frames)), size, size, 1)
    config = InferenceConfig(
        prompts=["a panda is surfing"],
        num_inference_steps=steps,
        inversion_steps=steps,
        window=window,
        window_overlap=overlap,
    )
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: what building the models freed goes back to the system
    pipeline_gib = _rss_gib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak from here on
    start, start_cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        videos = render_edits(pipe, encode_clip(pipe, clip), config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    assert videos[0].shape == (frames, size, size, 3)
    return {"seconds": seconds, "cpu": cpu_seconds, "pipeline_gib": pipeline_gib, "peak_gib": _rss_gib("VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default="24,48,96", help="comma-separated clip lengths")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (latents are size/8)")
    parser.add_argument("--steps", type=int, default=2, help="DDIM inversion and sampling steps")
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.size, args.steps, args.window, args.overlap)))
        return

    import torch

    print(
        f"SD-1.4 architecture, random weights, fp32 on the CPU ({torch.get_num_threads()} threads); {args.size}x"
        f"{args.size}, {args.steps} inversion + {args.steps} sampling steps with guidance, windows of {args.window} "
        f"frames overlapping by {args.overlap}; torch {torch.__version__}"
    )
    print(
        "| frames | windows | UNet frames / frame | s | s / frame | CPU s / frame | pipeline GiB | peak above it GiB "
        "| × first |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    first = None
    for frames in (int(f) for f in args.frames.split(",")):
        starts = window_starts(frames, args.window, args.overlap) if frames > args.window else [0]
        evaluated = len(starts) * min(args.window, frames)
        command = [sys.executable, __file__, "--worker", str(frames), "--size", str(args.size)]
        command += ["--steps", str(args.steps), "--window", str(args.window), "--overlap", str(args.overlap)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"the {frames}-frame case failed:\n{result.stderr[-3000:]}")
        case = json.loads(result.stdout.strip().splitlines()[-1])
        above = case["peak_gib"] - case["pipeline_gib"]
        first = first or above
        print(
            f"| {frames} | {len(starts)} | {evaluated / frames:.2f} | {case['seconds']:.1f} | "
            f"{case['seconds'] / frames:.2f} | {case['cpu'] / frames:.2f} | {case['pipeline_gib']:.2f} | {above:.2f} | "
            f"{above / first:.2f} |"
        )


if __name__ == "__main__":
    main()
