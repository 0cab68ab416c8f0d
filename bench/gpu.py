"""The GPU figures: tuning step, a 24-frame edit and a 240-frame whole-clip edit (full SD-1.4, random weights, bf16).

    python bench/gpu.py                      # on one GPU: about 5-8 minutes on an H100 80 GB
    python bench/gpu.py --device cpu --size 64 --frames 4 --long-frames 12 --steps 2 --train-steps 1   # smoke test

Three measurements, each printed as seconds and peak GPU memory (``torch.cuda.max_memory_allocated``):

1. **tuning**: seconds per optimizer step at 24 frames 512² (the trainer's step: cached clip latents,
   the default tuned modules, AdamW, bf16 autocast), with gradient checkpointing on and off, and the
   extrapolation to 500 steps (goal: under 3 minutes);
2. **edit**: one 24-frame 512² edit, 50 DDIM inversion steps and 50 sampling steps with guidance,
   VAE encode and decode included (goal: under 20 s);
3. **whole clip**: the same edit of 240 frames 512² over windows of 24 frames (goal: under 3 minutes,
   within 24 GB).

Random weights make the pictures meaningless but the compute real. Nothing is downloaded.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sd14  # noqa: E402
from vidsynth.config.inference import InferenceConfig  # noqa: E402
from vidsynth.dtypes import torch_dtype  # noqa: E402
from vidsynth.editing.render import encode_clip, render_edits  # noqa: E402
from vidsynth.media.video import Clip  # noqa: E402
from vidsynth.models.trainable import DEFAULT_TRAINABLE_MODULES  # noqa: E402
from vidsynth.training.encode import encode_posterior  # noqa: E402
from vidsynth.training.step import diffusion_loss, step_generator  # noqa: E402
from vidsynth.training.unet_setup import prepare_unet  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def random_clip(frames: int, size: int) -> Clip:
    pixels = np.random.default_rng(0).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)  # (F, H, W, 3)
    return Clip(pixels, "random", 24.0, tuple(range(frames)), size, size, 1)


def tuning(args: argparse.Namespace, device: torch.device, checkpointing: bool) -> tuple[float, float]:
    """Seconds per tuning step (after ``--warmup`` steps) and peak memory, as train.py's loop runs it."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    from vidsynth.testing.tiny_sd import SD14_SCHEDULER

    unet = sd14.video_unet().to(device)
    params = prepare_unet(unet, DEFAULT_TRAINABLE_MODULES, "fp32", checkpointing)
    optimizer = torch.optim.AdamW(params, lr=3e-5)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer)
    vae = sd14.vae().to(device, torch.bfloat16).requires_grad_(False)
    latents = encode_posterior(vae, random_clip(args.frames, args.size).pixel_frames())  # (1, 4, F, h, w) each
    del vae
    context = torch.randn(1, 77, 768, device=device)
    noise_scheduler = DDPMScheduler.from_config(SD14_SCHEDULER)
    reset_peak(device)
    times = []
    for step in range(args.warmup + args.train_steps):
        synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = diffusion_loss(unet, noise_scheduler, latents, context, step_generator(33, step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del unet, optimizer, params
    return sum(times[args.warmup :]) / args.train_steps, peak_gib(device)


def edit(pipe, frames: int, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Seconds and peak memory of one edit: encode, inversion, one prompt with guidance, decode to uint8."""
    clip = random_clip(frames, args.size)
    config = InferenceConfig(
        prompts=["a panda is surfing"],
        num_inference_steps=args.steps,
        inversion_steps=args.steps,
        window=args.window,
        window_overlap=args.overlap,
    )
    reset_peak(device)
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        videos = render_edits(pipe, encode_clip(pipe, clip), config)
    synchronize(device)
    assert videos[0].shape == (frames, args.size, args.size, 3)
    return time.perf_counter() - start, peak_gib(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16", help="the edits' model dtype")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=24, help="frames of the tuning step and of the short edit")
    parser.add_argument("--long-frames", type=int, default=240, help="frames of the whole-clip edit")
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50, help="DDIM inversion and sampling steps of the edits")
    parser.add_argument("--warmup", type=int, default=2, help="tuning steps before the timed ones")
    parser.add_argument("--train-steps", type=int, default=5, help="timed tuning steps")
    parser.add_argument("--skip-tuning", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}; torch {torch.__version__}; SD-1.4 architecture, random weights, {args.size}x{args.size}")

    if not args.skip_tuning:
        for checkpointing in (True, False):
            seconds, peak = tuning(args, device, checkpointing)
            print(
                f"tuning step, {args.frames} frames, bf16 autocast, checkpointing {'on' if checkpointing else 'off'}: "
                f"{seconds:.2f} s/step (500 steps: {500 * seconds / 60:.1f} min), peak {peak:.1f} GiB"
            )

    pipe = sd14.pipeline().to(device, torch_dtype(args.dtype))
    pipe.set_progress_bar_config(disable=True)
    edit(pipe, min(args.frames, 4), argparse.Namespace(**{**vars(args), "steps": 1}), device)  # warm-up: kernels
    for frames in (args.frames, args.long_frames):
        seconds, peak = edit(pipe, frames, args, device)
        print(
            f"edit, {frames} frames, {args.dtype}, {args.steps} inversion + {args.steps} sampling steps "
            f"(guidance), windows of {args.window}: {seconds:.1f} s ({seconds / frames:.2f} s/frame), "
            f"peak {peak:.1f} GiB"
        )


if __name__ == "__main__":
    main()
