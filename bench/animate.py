"""Time and peak memory of animating a still with Stable Video Diffusion, per memory setting.

    python bench/animate.py                   # CPU: SVD-XT architecture, random weights, 8 frames 128x72, 2 steps
    python bench/animate.py --device cuda     # one GPU: 25 frames 1024x576, SVD-XT's own size
    python bench/animate.py --device cuda --model checkpoints/stable-video-diffusion-img2vid-xt

The pipeline is built once, in memory (``bench/svd.py``: SVD-XT's unet, vae, image encoder and
scheduler configs, random weights, no download), or loaded from ``--model``; each setting then runs
what ``python -m vidsynth.animate`` runs: :func:`vidsynth.animation.pipeline.place` (the memory mode)
and :func:`vidsynth.animation.generate.generate` (diffusers' ``StableVideoDiffusionPipeline`` with
guidance, the still VAE-encoded, the frames decoded). The settings: the VAE decoding all frames at
once or ``--decode-chunk-size`` at a time, the UNet's forward chunking off and on, and on a GPU fp32
against fp16 and offload none / model / sequential (the last two need a GPU). Forward chunking, once
on, stays on (``place`` turns it on, nothing turns it off), so the settings with it come last.

Peak memory: on the CPU the process's peak resident memory during the setting (its high-water mark
reset when the setting starts, as in ``bench/long.py``); on a GPU ``torch.cuda.max_memory_allocated``.
The column "above weights" is that peak less what was held when the setting started (the weights, for no
offload). The peak does not grow with the steps (each step frees what it allocated), so 2 are enough.
A CPU step at SVD-XT's 25 frames 1024x576 would take hours, so the CPU runs a small size; this CPU
has no 16-bit arithmetic, so its default is fp32. Random weights make the frames meaningless but the
compute real. Prints a markdown table; asserts nothing.
"""

import argparse
import ctypes
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from vidsynth.animation.generate import generate  # noqa: E402
from vidsynth.animation.model import (
    ModelFacts,  # noqa: E402
    model_facts,  # noqa: E402
)
from vidsynth.animation.pipeline import load_animation_pipeline, place  # noqa: E402
from vidsynth.animation.plan import segments  # noqa: E402
from vidsynth.animation.request import AnimateRequest  # noqa: E402
from vidsynth.config.animate import AnimateConfig  # noqa: E402
from vidsynth.dtypes import torch_dtype  # noqa: E402


class Setting(NamedTuple):
    dtype: str
    offload: str
    decode_chunk_size: int | None  # None: all frames at once
    forward_chunking: bool


def settings(device: torch.device, dtype: str, chunk: int) -> list[Setting]:
    """What is measured, in an order that never turns forward chunking off again."""
    if device.type != "cuda":
        return [Setting(dtype, "none", size, chunking) for chunking in (False, True) for size in (None, chunk)]
    return [
        Setting("fp32", "none", None, False),
        Setting("fp16", "none", None, False),
        Setting("fp16", "none", chunk, False),
        Setting("fp16", "none", None, True),
        Setting("fp16", "none", chunk, True),
        Setting("fp16", "model", chunk, True),  # configs/animate-jetson.yaml's memory settings
        Setting("fp16", "sequential", chunk, True),
    ]


def _rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def start_measuring(device: torch.device) -> float:
    """Free what earlier settings left, reset the peak; the memory held now (GiB)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**30
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: freed memory goes back to the system
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the high-water mark restarts from here
    return _rss_gib("VmRSS")


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**30
    return _rss_gib("VmHWM")


def request(setting: Setting, args: argparse.Namespace, device: torch.device, frames: int) -> AnimateRequest:
    """What ``vidsynth.animation.request.resolve_request`` makes of a still at the bench's size and settings."""
    config = AnimateConfig(
        image="random.png",
        num_frames=frames,
        num_inference_steps=args.steps,
        decode_chunk_size=setting.decode_chunk_size,
        offload=setting.offload,
        forward_chunking=setting.forward_chunking,
        dtype=setting.dtype,
    )
    pixels = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    return AnimateRequest(
        config=config,
        model=ModelFacts(args.model or "random", frames, 8, 1024),
        still=Image.fromarray(pixels),
        still_ref={"path": "random.png", "frame": None},
        stem="random",
        width=args.width,
        height=args.height,
        fps=7.0,
        segments=segments(frames, frames, config.seed),
        clip=None,
        sound=None,
        out=Path(tempfile.gettempdir()) / "unused",  # nothing is written
        device=device,
        dtype=torch_dtype(setting.dtype),
    )


def measure(pipe, setting: Setting, args: argparse.Namespace, device: torch.device, frames: int) -> tuple:
    """Seconds, peak GiB and peak GiB above what was held at the start, of one animation at ``setting``."""
    if pipe.unet.dtype != torch_dtype(setting.dtype):
        pipe.to(dtype=torch_dtype(setting.dtype))
    place(pipe, device, setting.offload, setting.forward_chunking)
    held = start_measuring(device)
    start = time.perf_counter()
    with torch.no_grad():
        video = generate(pipe, request(setting, args, device, frames))
    peak = peak_gib(device)
    assert video.shape == (frames, args.height, args.width, 3)
    return time.perf_counter() - start, peak, peak - held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--model", help="an SVD folder to load (default: SVD-XT's architecture, random weights)")
    parser.add_argument("--frames", type=int, help="default: 8 on the CPU, 25 (SVD-XT's) on a GPU")
    parser.add_argument("--width", type=int, help="default: 128 on the CPU, 1024 on a GPU")
    parser.add_argument("--height", type=int, help="default: 72 on the CPU, 576 on a GPU")
    parser.add_argument("--steps", type=int, default=2, help="Euler steps (the peak does not grow with them)")
    parser.add_argument("--decode-chunk-size", type=int, default=2, help="frames decoded at once in the chunked rows")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="of the CPU settings")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    frames = args.frames or (25 if gpu else 8)
    args.width, args.height = args.width or (1024 if gpu else 128), args.height or (576 if gpu else 72)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"

    start = time.perf_counter()
    if args.model:
        pipe = load_animation_pipeline(model_facts(args.model), torch.float32)
    else:
        from bench import svd

        pipe = svd.pipeline()
    pipe.set_progress_bar_config(disable=True)
    what = args.model or "SVD-XT architecture, random weights"
    print(
        f"{name}; torch {torch.__version__}; {what} (ready in {time.perf_counter() - start:.0f} s); "
        f"{frames} frames at {args.width}x{args.height}, {args.steps} steps with guidance"
    )
    plan = settings(device, args.dtype, args.decode_chunk_size)
    measure(pipe, plan[0], argparse.Namespace(**{**vars(args), "steps": 1}), device, 2)  # warm-up
    kind = "peak GPU memory (allocated)" if gpu else "peak resident memory"
    print(f"\n| dtype | offload | decode chunk | forward chunking | frames | size | seconds | {kind} | above weights |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in plan:
        row = (
            f"| {setting.dtype} | {setting.offload} | {setting.decode_chunk_size or 'all'} | "
            f"{'on' if setting.forward_chunking else 'off'} | {frames} | {args.width}x{args.height} |"
        )
        try:
            seconds, peak, above = measure(pipe, setting, args, device, frames)
        except torch.cuda.OutOfMemoryError:
            print(f"{row} out of memory | | |", flush=True)
            continue
        print(f"{row} {seconds:.1f} | {peak:.2f} GiB | {above:.2f} GiB |", flush=True)


if __name__ == "__main__":
    main()
