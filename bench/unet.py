"""Forward and forward+backward time and peak memory: plain 2-D UNet over frames vs. video UNet.

    python bench/unet.py --frames 8 --size 128

Builds the full-size SD-1.4 UNet from its config with random weights (no download). Each case runs
in its own subprocess so that its peak resident memory is its own. The backward pass trains what
tuning trains (``attn1.to_q``, ``attn2.to_q`` and, in the video UNet, ``attn_temp``) with
gradient checkpointing off. Prints figures; asserts nothing.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sd14  # noqa: E402
from vidsynth.models.trainable import select_trainable  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(model: str, backward: bool, frames: int, size: int, repeats: int) -> dict:
    torch.set_num_threads(torch.get_num_threads())
    unet = sd14.video_unet() if model == "video" else sd14.unet_2d()
    modules = ("attn1.to_q", "attn2.to_q", "attn_temp") if model == "video" else ("attn1.to_q", "attn2.to_q")
    select_trainable(unet, modules)
    unet.train(backward)
    model_mb = peak_rss_mb()
    latent = size // 8
    g = torch.Generator().manual_seed(0)
    context = torch.randn(1, 77, 768, generator=g)
    if model == "video":
        sample = torch.randn(1, 4, frames, latent, latent, generator=g)  # one clip

        def step():
            return unet(sample, 500, context).sample
    else:
        sample = torch.randn(frames, 4, latent, latent, generator=g)  # the frames as a batch
        contexts = context.expand(frames, -1, -1)

        def step():
            return unet(sample, 500, contexts).sample

    times = []
    for _ in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        if backward:
            step().pow(2).mean().backward()
            unet.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                step()
        times.append(time.perf_counter() - start)
    return {"seconds": min(times[1:]), "model_mb": model_mb, "peak_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="frame size in pixels (latents are size/8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after one warm-up; the best is shown")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args()
    if args.case:
        model, mode = args.case.split(":")
        print(json.dumps(run_case(model, mode == "fwd+bwd", args.frames, args.size, args.repeats)))
        return
    print(
        f"SD-1.4 UNet, random weights, {args.frames} frames at {args.size}x{args.size}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; best of {args.repeats} after a warm-up"
    )
    rows = {}
    for model in ("2d", "video"):
        for mode in ("fwd", "fwd+bwd"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--frames",
                    str(args.frames),
                    "--size",
                    str(args.size),
                    "--repeats",
                    str(args.repeats),
                    "--case",
                    f"{model}:{mode}",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows[model, mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'model':<8}{'pass':<10}{'seconds':>10}{'model MB':>11}{'peak MB':>10}{'peak-model':>12}")
    for (model, mode), r in rows.items():
        print(
            f"{model:<8}{mode:<10}{r['seconds']:>10.2f}{r['model_mb']:>11.0f}{r['peak_mb']:>10.0f}"
            f"{r['peak_mb'] - r['model_mb']:>12.0f}"
        )
    for mode in ("fwd", "fwd+bwd"):
        v, p = rows["video", mode], rows["2d", mode]
        print(
            f"video/2d {mode}: time x{v['seconds'] / p['seconds']:.2f}, peak memory x{v['peak_mb'] / p['peak_mb']:.2f}"
        )


if __name__ == "__main__":
    main()
