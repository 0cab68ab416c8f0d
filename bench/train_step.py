"""Seconds per step, peak memory and result size of a tuning step on the full-size SD-1.4 architecture (random weights).

    python bench/train_step.py --frames 8 --size 128 [--warmup 1 --steps 1] [--configs reference,trainer-bf16w]
    python bench/train_step.py --frames 2 --size 64 --configs lora   # full tuning vs LoRA rank 4

Compares this trainer's step (clip latents and prompt embedding cached before training; selectable
frozen-weight storage, bf16 autocast, gradient checkpointing, 8-bit AdamW) with a "reference-style"
step as the original Tune-A-Video runs on a CPU: float32 everywhere, nothing cached (the VAE encodes
the clip and the text encoder the prompt in every step, both held in memory), gradient
checkpointing, attention with the full score matrix (its xformers is GPU-only). Both train the same
modules (attn1.to_q, attn2.to_q, attn_temp; 74M of 909M parameters) with AdamW; the LoRA configurations
(``lora_rank`` 4) train adapters on attn1.to_q and attn2.to_q instead, and the temporal layers fully
(``lora_temporal`` false) or through adapters too (true). The trainer's
configurations encode the clip and the prompt once and free the VAE and the text encoder, as
``train.py`` does (it reloads them only to validate); their text context is a random (1, 77, 768).

Each configuration runs in its own subprocess, so memory is per configuration: the peak resident
set size during the measured steps (reset after set-up, which builds the float32 model in every
case, and again after the warm-up, so Adam's state is included and one-off buffers are not). All
configurations draw the same steps (latents, noise, timestep), so the first loss, the first gradient
and the parameter change after two steps can be compared with those of the float32 trainer: that is
the quality cost of the cheaper settings (a copy of the compared parameters, 39 MB, is held through
the second step in every configuration; the LoRA configurations train other parameters and are not compared).
After the steps each configuration writes its result with the trainer's writer (``write_result``, float32)
into a temporary run folder: the result size is that folder's ``RunFolder.result_bytes()``. Nothing is downloaded.

Defaults: 5 configurations, 1 warm-up + 1 measured step each, about 6 minutes on 2 idle CPU cores
(set-up ~20 s per configuration). ``--configs lora`` runs the reference, the float32 trainer
and its two LoRA variants. ``--warmup``/``--steps`` trade time for steadier figures; on a
machine shared with other jobs, ``--threads 1`` gives CPU seconds that the other jobs hardly disturb
(two threads that wait for each other lose whole time slices to them).
"""

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler
from einops import rearrange

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sd14 import SD14_UNET, SD14_VAE, text_encoder  # noqa: E402
from vidsynth.config import TrainConfig  # noqa: E402
from vidsynth.media.video import Clip  # noqa: E402
from vidsynth.models.trainable import DEFAULT_TRAINABLE_MODULES  # noqa: E402
from vidsynth.models.unet import VideoUNet  # noqa: E402
from vidsynth.run_folder import RunFolder  # noqa: E402
from vidsynth.training.encode import encode_posterior  # noqa: E402
from vidsynth.training.optimizer import build_optimizer  # noqa: E402
from vidsynth.training.result import write_result  # noqa: E402
from vidsynth.training.step import diffusion_loss, step_generator  # noqa: E402
from vidsynth.training.unet_setup import lora_spec, prepare_unet  # noqa: E402

SD14_NOISE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
BASE_MODEL = "CompVis/stable-diffusion-v1-4"  # named in the written result's metadata only
SEED = 33
GRADIENT_PROBE = "mid_block."  # the tuned parameters whose first gradient and update are compared across configs


@dataclass(frozen=True)
class Setting:
    """One configuration of the step."""

    encode_per_step: bool  # VAE-encode the clip and text-encode the prompt every step (the original), not once
    frozen_dtype: str  # fp32 | bf16: storage of the frozen weights (train.py's frozen_dtype)
    autocast_bf16: bool  # bf16 autocast (train.py's mixed_precision: bf16)
    checkpointing: bool  # gradient checkpointing
    sdpa: bool  # PyTorch's SDPA; False: the original's explicit softmax(QK^T)V (its xformers is GPU-only)
    adam_8bit: bool = False  # bitsandbytes' 8-bit AdamW (train.py's use_8bit_adam)
    lora_rank: int | None = None  # train.py's lora_rank (None: full tuning)
    lora_temporal: bool = False  # train.py's lora_temporal


CONFIGS = {
    "reference": Setting(True, "fp32", autocast_bf16=False, checkpointing=True, sdpa=False),
    "trainer-fp32-ckpt": Setting(False, "fp32", autocast_bf16=False, checkpointing=True, sdpa=True),
    "trainer-fp32": Setting(False, "fp32", autocast_bf16=False, checkpointing=False, sdpa=True),
    "trainer-bf16w-ckpt": Setting(False, "bf16", autocast_bf16=False, checkpointing=True, sdpa=True),
    "trainer-bf16w": Setting(False, "bf16", autocast_bf16=False, checkpointing=False, sdpa=True),
    "trainer-bf16-autocast": Setting(False, "bf16", autocast_bf16=True, checkpointing=False, sdpa=True),
    "trainer-bf16-autocast-ckpt": Setting(False, "bf16", autocast_bf16=True, checkpointing=True, sdpa=True),
    "trainer-bf16w-8bit": Setting(False, "bf16", autocast_bf16=False, checkpointing=False, sdpa=True, adam_8bit=True),
    "trainer-bf16w-ckpt-8bit": Setting(False, "bf16", False, checkpointing=True, sdpa=True, adam_8bit=True),
    "trainer-fp32-lora4": Setting(False, "fp32", False, checkpointing=False, sdpa=True, lora_rank=4),
    "trainer-fp32-lora4-temporal": Setting(False, "fp32", False, False, True, lora_rank=4, lora_temporal=True),
}
# The defaults keep the run to a few minutes on 2 cores; bf16 autocast is slow on CPUs without bf16 instructions.
DEFAULT_CONFIGS = ("reference", "trainer-fp32", "trainer-bf16w", "trainer-bf16w-ckpt", "trainer-bf16w-ckpt-8bit")
CONFIG_GROUPS = {"lora": ("reference", "trainer-fp32", "trainer-fp32-lora4", "trainer-fp32-lora4-temporal")}
GRADIENT_BASE = ("trainer-fp32", "trainer-fp32-ckpt")  # float32 trainers: the quality yardstick


def explicit_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
    """Attention as the original computes it without xformers: the full score matrix, then softmax."""
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (b, heads, queries, keys)
    if attn_mask is not None:
        scores = scores + attn_mask
    return torch.matmul(scores.softmax(dim=-1), value)


def _release_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: freed memory may stay counted, the figures are then upper bounds
        pass


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS


def _rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(name: str, frames: int, size: int, warmup: int, steps: int, probe_path: Path) -> dict:
    """Build the models for ``name``, run warmup + measured steps; seconds per step and peak RSS."""
    setting = CONFIGS[name]
    if not setting.sdpa:
        F.scaled_dot_product_attention = explicit_attention  # in this worker process only
    torch.manual_seed(0)
    unet = VideoUNet.from_config(SD14_UNET)  # random weights, PyTorch's default init
    vae = AutoencoderKL.from_config(SD14_VAE)
    vae.requires_grad_(False).eval()
    noise_scheduler = DDPMScheduler(**SD14_NOISE)
    inputs = torch.Generator().manual_seed(2)
    pixels = torch.rand(frames, 3, size, size, generator=inputs) * 2 - 1  # (F, 3, H, W) in [-1, 1]
    context = torch.randn(1, 77, SD14_UNET["cross_attention_dim"], generator=inputs)  # (1, 77, 768)

    cfg = TrainConfig(
        pretrained_model_path=BASE_MODEL,
        trainable_modules=list(DEFAULT_TRAINABLE_MODULES),
        use_8bit_adam=setting.adam_8bit,
        lora_rank=setting.lora_rank,
        lora_temporal=setting.lora_temporal,
    )
    lora = lora_spec(cfg, unet, SEED)
    params = prepare_unet(unet, cfg.trainable_modules, setting.frozen_dtype, setting.checkpointing, lora)
    optimizer = build_optimizer(params, cfg, learning_rate=3e-5)
    if setting.encode_per_step:
        prompt_encoder = text_encoder().requires_grad_(False).eval()
        prompt_ids = torch.randint(0, prompt_encoder.config.vocab_size, (1, 77), generator=inputs)  # a tokenized prompt

        def loss_fn(generator: torch.Generator) -> torch.Tensor:
            with torch.no_grad():
                posterior = vae.encode(pixels).latent_dist  # every step, all frames at once
                x0 = rearrange(posterior.sample(generator), "(b f) c h w -> b c f h w", f=frames) * 0.18215
                context = prompt_encoder(prompt_ids)[0]  # (1, 77, 768), every step
            noise = torch.randn(x0.shape, generator=generator)
            timesteps = torch.randint(0, 1000, (1,), generator=generator)
            prediction = unet(noise_scheduler.add_noise(x0, noise, timesteps), timesteps, context).sample
            return F.mse_loss(prediction.float(), noise.float())

    else:
        latents = encode_posterior(vae, pixels.split(1))  # once, before the first step; train.py then frees the VAE
        del vae

        def loss_fn(generator: torch.Generator) -> torch.Tensor:
            return diffusion_loss(unet, noise_scheduler, latents, context, generator)

    clip = Clip(
        frames=((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy(),
        path="bench.mp4",
        source_fps=8.0,
        frame_indices=tuple(range(frames)),
        width=size,
        height=size,
        stride=1,
    )

    _release_freed_memory()
    setup_rss = _rss_gib("VmRSS")
    _reset_peak_rss()
    wall, cpu, losses, first_grad_norm = [], [], [], None
    for step in range(warmup + steps):
        if step == warmup and warmup:
            _reset_peak_rss()  # the measured steps' peak: Adam's state exists, one-off set-up buffers are gone
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.autocast_bf16):
            loss = loss_fn(step_generator(33, step))
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        if step == 0:
            first_grad_norm = float(grad_norm)
            probed = [p for n, p in unet.named_parameters() if p.requires_grad and n.startswith(GRADIENT_PROBE)]
            probe = {"grad": torch.cat([p.grad.flatten() for p in probed])}
            before = [p.detach().clone() for p in probed]
        optimizer.step()
        if step == min(1, warmup + steps - 1):  # after the second step: 8-bit Adam's first update is exact
            probe["update"] = torch.cat([(p.detach() - b).flatten() for p, b in zip(probed, before, strict=True)])
            torch.save(probe, probe_path)
            del probe, probed, before
        optimizer.zero_grad(set_to_none=True)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        losses.append(loss.item())
    peak_rss = _rss_gib("VmHWM")
    with tempfile.TemporaryDirectory() as folder:  # what a run folder would keep: the trainer's own writer
        run = RunFolder(Path(folder))
        write_result(unet, run, cfg, clip, warmup + steps, SEED, lora)
        result_bytes = run.result_bytes()
    return {
        "config": name,
        **asdict(setting),
        "seconds_per_step": sum(wall[warmup:]) / steps,
        "cpu_seconds_per_step": sum(cpu[warmup:]) / steps,
        "step_times": wall,
        "peak_rss_gib": peak_rss,
        "tuned_params": sum(param.numel() for param in params),
        "result_bytes": result_bytes,
        "setup_rss_gib": setup_rss,
        "first_loss": losses[0],
        "first_grad_norm": first_grad_norm,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0],
    }


def run_worker(name: str, args: argparse.Namespace, probe_path: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--probe",
        str(probe_path),
        *("--frames", str(args.frames), "--size", str(args.size)),
        *("--warmup", str(args.warmup), "--steps", str(args.steps), "--threads", str(args.threads)),
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="frame width and height in pixels (multiple of 64)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first (oneDNN picks kernels)")
    parser.add_argument("--steps", type=int, default=1, help="measured steps")
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, of {', '.join(CONFIGS)}; or all; or lora ({', '.join(CONFIG_GROUPS['lora'])})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per worker (0: torch's default); 1 gives CPU seconds "
        "that other jobs on the machine hardly disturb",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(measure(args.worker, args.frames, args.size, args.warmup, args.steps, Path(args.probe))))
        return

    groups = {"all": tuple(CONFIGS), **CONFIG_GROUPS}
    names = list(groups[args.configs]) if args.configs in groups else args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or "reference" not in names:
        raise SystemExit(f"--configs must include reference and name only {', '.join(CONFIGS)}; got {args.configs}")
    results, probes = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            probe_path = Path(scratch) / f"{name}.pt"
            results[name] = run_worker(name, args, probe_path)
            probes[name] = torch.load(probe_path)
            r = results[name]
            print(f"  {name}: {r['seconds_per_step']:.2f} s/step, peak {r['peak_rss_gib']:.2f} GiB", file=sys.stderr)

    ref = results["reference"]
    base = next((name for name in GRADIENT_BASE if name in results), None)
    print(
        f"\nTuning step, SD-1.4 UNet (909M params), {args.frames} frames {args.size}x{args.size}, "
        f"{ref['threads']} threads; {args.warmup} warm-up + {args.steps} measured steps per config"
    )
    header = (
        f"{'config':<27} {'tuned M':>7} {'s/step':>7} {'cpu s':>7} {'set-up GiB':>10} {'peak GiB':>9} "
        f"{'result MB':>9} {'time x':>7} {'cpu x':>6} {'mem x':>6} {'loss':>8} {'grad cos':>9} {'update cos':>10} "
        f"{'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        compared = base and not r["encode_per_step"] and r["lora_rank"] is None
        similarity = {
            kind: f"{cosine(probes[name][kind], probes[base][kind]):.5f}" if compared else "-"
            for kind in ("grad", "update")
        }
        print(
            f"{name:<27} {r['tuned_params'] / 1e6:>7.2f} {r['seconds_per_step']:>7.2f} "
            f"{r['cpu_seconds_per_step']:>7.1f} {r['setup_rss_gib']:>10.2f} {r['peak_rss_gib']:>9.2f} "
            f"{r['result_bytes'] / 1e6:>9.2f} "
            f"{r['seconds_per_step'] / ref['seconds_per_step']:>7.2f} "
            f"{r['cpu_seconds_per_step'] / ref['cpu_seconds_per_step']:>6.2f} "
            f"{r['peak_rss_gib'] / ref['peak_rss_gib']:>6.2f} {r['first_loss']:>8.5f} {similarity['grad']:>9} "
            f"{similarity['update']:>10} "
            f"{r['load_average']:>5.1f}"
        )
    print(
        "s/step: wall clock; cpu s: CPU seconds of all threads (steadier when other jobs share the cores; load: "
        "the 1-minute load average at the end). tuned M: trained parameters, millions. set-up GiB: resident before "
        "the first step; peak GiB: the measured steps' peak resident set size. result MB: the result the trainer "
        "writes (float32), 10^6 bytes. time x / cpu x / mem x: ratios to the reference-style step (targets: time "
        "<= 0.5, memory <= 0.6)."
        + (
            f" grad cos / update cos: cosine of the first step's mid-block gradient / of the mid-block parameters' "
            f"change over two steps with {base}'s (same draws)."
            if base
            else ""
        )
    )


if __name__ == "__main__":
    main()
