"""Per-frame img2img vs. Tune-A-Video (zero-shot) on one clip at the same settings: metrics and wall time.

    python bench/compare.py [--base SD_FOLDER] [--video clip.mp4] [--clip-model CLIP] [--frames 8] [--size 64]

Both methods run through ``inference.py`` itself with the same clip sampling, steps (DDIM inversion
included), guidance, seed and prompt. Each runs in a fresh process, and its time is that of
``inference.main`` from model loading to the written files, Python's imports excluded: both pay the
same cold start, and Tune-A-Video's inversion is never read from a cache. Weights: ``--base``, else
``checkpoints/stable-diffusion-v1-4`` when present, else the tiny random checkpoint (whose numbers
test the plumbing, not the quality). Metrics: ``vidsynth.evaluate`` with ``--clip-model``, else the
tiny random CLIP. Clip: ``--video``, else the procedural test scene. Prints the tables; asserts nothing.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vidsynth.evaluation.evaluate import evaluate, format_markdown  # noqa: E402
from vidsynth.media.scene import render_scene  # noqa: E402
from vidsynth.testing.tiny_clip import build_tiny_clip  # noqa: E402
from vidsynth.testing.tiny_sd import build_tiny_sd  # noqa: E402

REAL_SD = ROOT / "checkpoints" / "stable-diffusion-v1-4"
METHODS = ("img2img", "tuneavideo")
# Run in a fresh interpreter: imports first, then only inference.main is timed.
_TIMED_MAIN = (
    "import sys, time\n"
    "import inference\n"
    "from vidsynth.cli import run_main\n"
    "start = time.perf_counter()\n"
    "run_main(lambda: inference.main(sys.argv[1:]))\n"
    "print(f'seconds={time.perf_counter() - start:.3f}')\n"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help=f"SD-1.x folder (default: {REAL_SD} if present, else the tiny checkpoint)")
    parser.add_argument("--video", help="clip to edit (default: the procedural test scene)")
    parser.add_argument("--clip-model", help="CLIP folder or hub id for the metrics (default: the tiny CLIP)")
    parser.add_argument("--prompt", default="a red ball is bouncing on the beach, cartoon style")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, help="frame width and height (default 512 with real weights, 64 tiny)")
    parser.add_argument("--steps", type=int, help="DDIM steps, inversion too (default 50 real, 10 tiny)")
    parser.add_argument("--guidance", type=float, default=12.5)
    parser.add_argument("--strength", type=float, default=0.5, help="img2img strength")
    parser.add_argument("--seed", type=int, default=33)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="keep the edits in this new folder (default: a temporary one)")
    return parser.parse_args()


def run_method(method: str, out: Path, cache: Path, base: str, video: str, args: argparse.Namespace) -> float:
    """``inference.py --method METHOD`` in a fresh process; the seconds its ``main`` took."""
    argv = ["--method", method, "--base", base, "--video", video, "--prompt", args.prompt, "--out", str(out)]
    argv += ["--frames", str(args.frames), "--steps", str(args.steps), "--inversion-steps", str(args.steps)]
    argv += ["--guidance", str(args.guidance), "--strength", str(args.strength), "--seed", str(args.seed)]
    argv += ["--device", args.device, "--format", "mp4", "--no-audio"]
    argv += [f"width={args.size}", f"height={args.size}", f"cache_dir={cache}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _TIMED_MAIN, *argv], cwd=ROOT, capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        sys.exit(f"inference.py --method {method} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1].removeprefix("seconds="))


def main() -> None:
    args = parse_args()
    real = args.base is not None or REAL_SD.is_dir()
    args.size = args.size or (512 if real else 64)
    args.steps = args.steps or (50 if real else 10)
    with tempfile.TemporaryDirectory(prefix="vidsynth-compare-") as scratch:
        scratch = Path(scratch)
        base = args.base or str(REAL_SD if real else build_tiny_sd(scratch / "tiny-sd"))
        clip_model = args.clip_model or str(build_tiny_clip(scratch / "tiny-clip"))
        scene_frames = 2 * args.frames  # the default stride is 2
        video = args.video or str(render_scene(scratch / "scene.mp4", scene_frames, 128, 128, fps=8.0))
        out = Path(args.out).absolute() if args.out else scratch / "edits"
        seconds = {method: run_method(method, out / method, scratch / "cache", base, video, args) for method in METHODS}
        rows = evaluate([out / method for method in METHODS], clip_model)

    model = base if real else "tiny random SD-1.x"
    clip = args.video or f"procedural test scene ({scene_frames} frames, 128x128, 8 fps)"
    print(f"\nModel: {model}. Clip: {clip}. {args.frames} frames at {args.size}x{args.size}, {args.steps} DDIM steps")
    print(f"(inversion too), guidance {args.guidance}, seed {args.seed}, img2img strength {args.strength}.\n")
    print(format_markdown(rows, args.clip_model or "tiny random CLIP"))
    print("| method | wall time (s) |\n|---|---|")
    for method, time in seconds.items():
        print(f"| {method} | {time:.1f} |")


if __name__ == "__main__":
    main()
