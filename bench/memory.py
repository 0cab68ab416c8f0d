"""Peak memory of editing one clip, at a profile's settings, with the full-size SD-1.4 architecture.

    python bench/memory.py --profile jetson      # 256x256, 8 frames, fp16 (configs/jetson.yaml)
    python bench/memory.py --profile desktop     # SD's default: 512x512, 24 frames, fp16
    python bench/memory.py                       # both

Random weights, built in memory (no download). Each case runs the whole edit of inference.py:
VAE-encode the clip, DDIM-invert it, sample one prompt with classifier-free guidance, decode. It
runs in its own subprocess so the peak resident memory (what a Jetson's shared 8 GB must hold) is
its own. The peak does not grow with the number of steps (each step frees what it allocated), so
one inversion step and one sampling step are enough to measure it. Models are built directly in
the measured dtype, so no fp32 copy inflates the peak.

This machine has no GPU, and its CPU has no 16-bit arithmetic (bf16 and fp16 are emulated, ~10x
slower than fp32). fp16 is measured as bf16, which stores the same two bytes per value. Where that
is too slow (the desktop default), ``--measure fp32`` measures in fp32 and also prints a 16-bit
figure derived from it: the process's fixed overhead plus half of the rest. Running the Jetson
profile both ways shows how far that derivation is from a 16-bit measurement. Prints figures;
asserts nothing.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sd14  # noqa: E402
from vidsynth.config import load_config  # noqa: E402
from vidsynth.config.inference import InferenceConfig  # noqa: E402
from vidsynth.dtypes import torch_dtype  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUDGET_GB = {"jetson": 8.0}  # Orin Nano: 8 GB shared by CPU and GPU (JetPack itself takes ~1-1.5 GB)


def profile_settings(name: str) -> dict:
    if name == "desktop":
        return {"frames": 24, "width": 512, "height": 512, "dtype": "fp16", "guidance": 12.5}
    cfg = load_config(InferenceConfig, [ROOT / "configs" / f"{name}.yaml"])
    return {
        "frames": cfg.num_frames,
        "width": cfg.width,
        "height": cfg.height,
        "dtype": cfg.dtype,
        "guidance": cfg.guidance_scale,
    }


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 1024**3


def run_case(settings: dict, steps: int, dtype: torch.dtype) -> dict:

    from vidsynth.editing.render import render_edits

    overhead_gb = rss_gb()  # Python, torch, diffusers: what a 16-bit run does not halve
    torch.set_default_dtype(dtype)  # parameters are created in the measured dtype
    pipe = sd14.pipeline()
    torch.set_default_dtype(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    models_gb = rss_gb()
    frames, height, width = settings["frames"], settings["height"], settings["width"]
    pixels = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    start = time.perf_counter()
    latents = pipe.encode_video(pixels)  # (1, 4, F, h, w)
    edit = InferenceConfig(
        prompts=["a panda is surfing"],
        num_inference_steps=steps,
        guidance_scale=settings["guidance"],
        inversion_steps=steps,
    )
    render_edits(pipe, latents, edit)
    peak = peak_rss_gb()
    return {"overhead_gb": overhead_gb, "models_gb": models_gb, "peak_gb": peak, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["jetson", "desktop"], action="append", help="default: both")
    parser.add_argument("--steps", type=int, default=1, help="inversion and sampling steps (the peak does not grow)")
    parser.add_argument(
        "--measure",
        choices=["profile", "fp32"],
        action="append",
        help="profile: in the profile's dtype (fp16 as bf16); fp32: in fp32, plus a derived 16-bit figure "
        "(default: profile for jetson, fp32 for desktop)",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one profile in this process
    args = parser.parse_args()
    if args.case:
        name, measure = args.case.split(":")
        settings = profile_settings(name)
        # This CPU has no fp16 arithmetic: a 16-bit profile is measured in bf16 (the same bytes per weight).
        profile_dtype = "bf16" if settings["dtype"] == "fp16" else settings["dtype"]
        dtype = torch.float32 if measure == "fp32" else torch_dtype(profile_dtype)
        print(json.dumps(run_case(settings, args.steps, dtype)))
        return
    print(
        f"Editing one clip, SD-1.4 architecture with random weights, {args.steps} inversion + {args.steps} "
        f"sampling step(s), guidance on; torch {torch.__version__} on CPU"
    )
    print(
        f"{'profile':<9}{'frames':>7}{'size':>10}{'dtype':>7}{'measured in':>13}{'models GB':>11}{'peak GB':>9}"
        f"{'16-bit peak GB':>18}{'budget GB':>11}{'seconds':>9}"
    )
    for name in args.profile or ["jetson", "desktop"]:
        settings = profile_settings(name)
        for measure in args.measure or (["profile"] if name == "jetson" else ["fp32"]):
            out = subprocess.run(
                [sys.executable, __file__, "--case", f"{name}:{measure}", "--steps", str(args.steps)],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if measure == "fp32":
                sixteen = f"~{r['overhead_gb'] + (r['peak_gb'] - r['overhead_gb']) / 2:.2f} (derived)"
                label = "fp32"
            else:
                sixteen = f"{r['peak_gb']:.2f}"
                label = "bf16" if settings["dtype"] != "fp32" else "fp32"
            print(
                f"{name:<9}{settings['frames']:>7}{settings['width']:>6}x{settings['height']:<3}"
                f"{settings['dtype']:>7}{label:>13}{r['models_gb']:>11.2f}{r['peak_gb']:>9.2f}{sixteen:>18}"
                f"{BUDGET_GB.get(name, '-'):>11}{r['seconds']:>9.1f}"
            )


if __name__ == "__main__":
    main()
