"""Peak memory of loading the SD-1.4 UNet from a diffusers folder and inflating it for video.

    python bench/load.py [--dtype fp32|bf16]

Writes a full-size SD-1.4 ``unet/`` folder with random weights (3.4 GB in float32) to a temporary
directory, then measures in a fresh subprocess each: diffusers' plain 2-D load, and
``VideoUNet.from_pretrained_2d`` (load, then inflate in place). The figure that matters is how far
the inflated load exceeds the plain one: a loader that builds a second model and copies the weights
into it holds both at once. Prints figures; asserts nothing.

About a minute, most of it writing the folder.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sd14  # noqa: E402
from vidsynth.dtypes import torch_dtype  # noqa: E402

CASES = ("2-D UNet2DConditionModel.from_pretrained", "VideoUNet.from_pretrained_2d")


def peak_rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("VmHWM not in /proc/self/status")


def measure(case: str, folder: str, dtype: str) -> dict:
    from diffusers import UNet2DConditionModel

    from vidsynth import VideoUNet

    before = peak_rss_gib()  # imports only
    if case == CASES[0]:
        model = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch_dtype(dtype))
    else:
        model = VideoUNet.from_pretrained_2d(folder, subfolder="unet", torch_dtype=torch_dtype(dtype))
    loaded = peak_rss_gib()
    with torch.no_grad():
        for param in model.parameters():
            param.sum()  # safetensors are memory-mapped: weights become resident when first read
    size = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    return {"case": case, "model_gib": size, "before_gib": before, "load_peak_gib": loaded, "peak_gib": peak_rss_gib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="dtype the model is loaded in")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.folder, args.dtype)))
        return

    with tempfile.TemporaryDirectory() as folder:
        print("writing a random SD-1.4 unet/ folder ...", file=sys.stderr)
        sd14.unet_2d().save_pretrained(Path(folder) / "unet")
        results = []
        for case in CASES:
            command = [sys.executable, __file__, "--worker", case, "--folder", folder, "--dtype", args.dtype]
            proc = subprocess.run(command, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{case} failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"\nLoading the SD-1.4 UNet ({args.dtype}), {torch.get_num_threads()} threads")
    print(f"{'case':<42} {'model GiB':>9} {'before':>6} {'load peak':>9} {'peak':>6} {'peak / 2-D peak':>16}")
    for r in results:
        ratio = r["peak_gib"] / results[0]["peak_gib"]
        print(
            f"{r['case']:<42} {r['model_gib']:>9.2f} {r['before_gib']:>6.2f} {r['load_peak_gib']:>9.2f} "
            f"{r['peak_gib']:>6.2f} {ratio:>16.2f}"
        )
    print(
        "GiB of the process's peak resident set size, imports included. before: the imports alone; load peak: "
        "when loading returns (memory-mapped weights not yet read); peak: after reading every weight once, "
        "as the first forward pass does."
    )


if __name__ == "__main__":
    main()
