"""Editing cost on the full-size SD-1.4 architecture: DDIM inversion and sampling per prompt.

    python bench/edit.py --frames 8 --size 128 --steps 10

Builds the pipeline in memory with random weights (SD-1.4's unet, vae and text-encoder configs from
``bench/sd14.py``, the generated tokenizer; no download), encodes a random clip, inverts it once and
samples each prompt from the inverted latents with classifier-free guidance, exactly as
``inference.py`` does through ``render_edits``. Prints wall time of each phase and peak resident
memory; asserts nothing. Random weights make the frames meaningless but the compute real.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sd14  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(device: torch.device, what, *args, **kwargs):
    """``what(*args, **kwargs)`` and its wall time (waiting for the GPU to finish)."""
    start = time.perf_counter()
    result = what(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="frame size in pixels (latents are size/8)")
    parser.add_argument("--steps", type=int, default=5, help="DDIM steps, for inversion and for sampling")
    parser.add_argument("--prompts", type=int, default=1, help="prompts sampled from the one inversion")
    parser.add_argument("--guidance", type=float, default=12.5)
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    args = parser.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    device = torch.device(args.device)

    pipe = sd14.pipeline().to(device)
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    model_mb = peak_rss_mb()
    print(
        f"SD-1.4 architecture, random weights, {args.dtype} on {device}; {args.frames} frames at "
        f"{args.size}x{args.size}, {args.steps} DDIM steps, guidance {args.guidance}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    pixels = torch.rand(args.frames, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents, encode_s = timed(device, pipe.encode_video, pixels)  # (1, 4, F, h, w)
    inverted, invert_s = timed(device, pipe.invert, latents, num_inference_steps=args.steps)
    print(f"VAE encode {encode_s:.1f} s; DDIM inversion {invert_s:.1f} s ({invert_s / args.steps:.2f} s/step)")
    for i in range(args.prompts):
        _, sample_s = timed(
            device,
            pipe,
            f"prompt number {i}",
            num_frames=args.frames,
            height=args.size,
            width=args.size,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            latents=inverted,
        )
        print(f"prompt {i + 1}: sampling + VAE decode {sample_s:.1f} s ({sample_s / args.steps:.2f} s/step)")
    print(f"peak RSS {peak_rss_mb():.0f} MB (models alone {model_mb:.0f} MB)")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
