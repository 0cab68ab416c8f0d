"""A video model trained from scratch on the synthetic shapes footage for a fixed CPU budget, and how good it gets.

    python bench/scratch.py [--minutes 20] [--threads 1] [--videos 8] [--per-class 8] [--ddim-steps 25] [--guidance 3]
    python bench/scratch.py --quick   # a smoke test of every part: seconds of training, meaningless figures

Makes the shapes set (``vidsynth.scratch.shapes.make_shapes``: shapes moving ``left``/``right``/``up``/
``down``, the label track beside them) and a held-out set from another seed, then trains the cascade of
``configs/scratch/shapes.yaml`` (base, then upsampler; the shipped defaults when that file is missing)
with ``python -m vidsynth.scratch train``, one stage per child process. The budget is CPU time: each
stage gets a share (``--base-share`` for the base, the rest split among the upsamplers), turned into its
``max_train_steps`` by timing a few training steps of that stage here first. CPU seconds are the fair
measure on a machine shared with other jobs; wall seconds are printed beside them. Then it prints:

(a) the base's loss curve (mean loss over stretches of steps, with the elapsed wall time);
(b) class-conditional samples (every frame one label, ``--per-class`` per label, DDIM with classifier-free
    guidance ``--guidance``): the share that a small classifier trained on *real* windows (a shapes set of
    its own, 16 videos) assigns to the requested label (chance is 1/K); the classifier's accuracy on
    held-out real windows says how far to trust it;
(c) the share of samples whose content moves in their label's direction (the one-pixel shift that best maps
    each frame onto the next), and the same share on held-out real windows as the reference;
(d) the upsampler's PSNR against bicubic interpolation on held-out real clips, both from the same
    area-downsampled low-resolution clip.

The goal on 2 CPU cores within 20 minutes: (b) >= 80 %, (d) >= 1 dB over bicubic. Asserts nothing.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch_judge import bicubic, classify, direction_matches, psnr, train_classifier  # noqa: E402
from vidsynth.commands import child_env, command  # noqa: E402
from vidsynth.config.loader import config_to_yaml, load_config  # noqa: E402
from vidsynth.scratch.config import ScratchConfig, StageConfig  # noqa: E402
from vidsynth.scratch.data import FootageWindows  # noqa: E402
from vidsynth.scratch.diffusion import ddim_sample, noise_scheduler, training_loss  # noqa: E402
from vidsynth.scratch.model import build_unet, resize_clips  # noqa: E402
from vidsynth.scratch.sample import ScratchRun, load_run, sample_cascade  # noqa: E402
from vidsynth.scratch.shapes import make_shapes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "configs" / "scratch" / "shapes.yaml"
NEVER = 10**9  # checkpoints and validation samples: not within the budget's steps


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def windows(path: Path, cfg: ScratchConfig, resolution: int, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Every window of the footage at ``path`` (or ``limit`` of them, evenly spread) at ``resolution``, stacked."""
    data = FootageWindows(
        path / "videos", num_frames=cfg.data.num_frames, frame_skip=cfg.data.frame_skip, resolution=resolution,
        labels=path / "labels.csv", cache_dir=path.parent / f"cache-{path.name}",
    )  # fmt: skip
    picks = range(len(data)) if limit is None else torch.linspace(0, len(data) - 1, limit).long().tolist()
    items = [data[i] for i in picks]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]} | {"names": data.class_names}


def seconds_per_step(cfg: ScratchConfig, stage: StageConfig, batch: dict, classes: int, steps: int = 3) -> float:
    """CPU seconds of one training step of ``stage`` at the config's batch size (after one warm-up step)."""
    before = cfg.previous(stage)
    unet = build_unet(stage, classes)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate)
    scheduler = noise_scheduler(cfg)
    clips = batch["pixel_values"][: cfg.train_batch_size].permute(0, 2, 1, 3, 4)
    labels = batch["labels"][: cfg.train_batch_size] if before is None else None
    low = resize_clips(clips, before.resolution) if before is not None else None
    clips = resize_clips(clips, stage.resolution)
    generator = torch.Generator().manual_seed(0)
    for step in range(steps + 1):
        if step == 1:
            start = time.process_time()
        loss = training_loss(unet, scheduler, clips, labels, low, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return (time.process_time() - start) / steps


def train(config: Path, stage: str, steps: int, threads: int, events: Path) -> tuple[float, float]:
    """``python -m vidsynth.scratch train`` of one stage in a child process; its (wall, CPU) seconds."""
    env = child_env() | {"OMP_NUM_THREADS": str(threads), "VIDSYNTH_EVENTS": str(events)}
    args = command("scratch", "train", "--config", str(config), f"stage={stage}", f"max_train_steps={steps}")
    wall, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"training stage {stage} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - wall, cpu_seconds() - cpu


def loss_curve(events: Path, rows: int = 8) -> list[tuple[int, int, float, float]]:
    """(first step, last step, mean loss, elapsed wall seconds at the last step) over ``rows`` stretches."""
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    began = next(event["time"] for event in lines if event["event"] == "stage")
    progress = [event for event in lines if event["event"] == "progress" and event.get("loss") is not None]
    chunks = [chunk for chunk in torch.tensor(range(len(progress))).tensor_split(rows) if len(chunk)]
    curve = []
    for chunk in chunks:
        part = [progress[i] for i in chunk.tolist()]
        mean = sum(event["loss"] for event in part) / len(part)
        curve.append((part[0]["step"], part[-1]["step"], mean, part[-1]["time"] - began))
    return curve


def upsample(run: ScratchRun, index: int, low: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    """Stage ``index`` of the cascade (an upsampler) on the clips ``low`` (b, 3, f, s, s) as the cascade runs it
    on the stage before's (DDIM, noise seeded as in ``sample_cascade``); (b, f, 3, S, S)."""
    stage, unet = run.stages[index]
    shape = (low.shape[0], 3, low.shape[2], stage.resolution, stage.resolution)
    generator = torch.Generator().manual_seed(seed + index)
    clips = ddim_sample(unet, run.scheduler_config, shape, None, low, steps, generator, run.device)
    return clips.permute(0, 2, 1, 3, 4)


def bench_config(tmp: Path, real: Path, seed: int) -> tuple[ScratchConfig, Path]:
    """The shapes config (shipped, else the defaults) on ``real``, into ``tmp/run``: no checkpoints, no validation
    samples, no logs within the budget."""
    overrides = [
        f"data.path={real / 'videos'}", f"data.labels={real / 'labels.csv'}", f"output_dir={tmp / 'run'}",
        f"seed={seed}", f"checkpointing_steps={NEVER}", f"validation_steps={NEVER}", "report_to=null",
    ]  # fmt: skip
    cfg = load_config(ScratchConfig, [SHIPPED] if SHIPPED.is_file() else [], overrides)
    for stage in cfg.stages:
        stage.max_train_steps = None  # each stage's steps come from the budget: max_train_steps=N per stage
    path = tmp / "bench.yaml"
    path.write_text(config_to_yaml(cfg))
    return cfg, path


def budgets(cfg: ScratchConfig, minutes: float, base_share: float) -> list[float]:
    """CPU seconds per stage: ``base_share`` of the budget for the base, the rest split among the upsamplers."""
    ups = len(cfg.stages) - 1
    total = minutes * 60
    return [total if not ups else total * base_share] + [total * (1 - base_share) / ups] * ups


def train_stages(cfg: ScratchConfig, config: Path, real: dict, args: argparse.Namespace, tmp: Path) -> list:
    """Train every stage for its share of the budget; print what each took; the base's loss curve."""
    print("| stage | CPU s/step (timed here) | steps | wall s | CPU s |\n|---|---|---|---|---|")
    curve = None
    for stage, budget in zip(cfg.stages, budgets(cfg, args.minutes, args.base_share), strict=True):
        per_step = seconds_per_step(cfg, stage, real, len(real["names"]))
        steps = 2 if args.quick else max(1, int(budget / per_step))
        events = tmp / f"events-{stage.name}.jsonl"
        wall, cpu = train(config, stage.name, steps, args.threads, events)
        print(f"| {stage.name} | {per_step:.2f} | {steps} | {wall:.0f} | {cpu:.0f} |")
        curve = curve or loss_curve(events)
    return curve


def uniform(data: dict, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows whose frames all have one label, and that label as an id of ``names`` (a small set may lack a
    label, so its own ids may differ)."""
    same = (data["labels"] == data["labels"][:, :1]).all(dim=1)
    ids = torch.tensor([names.index(name) for name in data["names"]])
    return data["pixel_values"][same], ids[data["labels"][same, 0]]


def judge_base(
    cfg: ScratchConfig, run: ScratchRun, real: dict, held: dict, args: argparse.Namespace, quick: dict
) -> None:
    """(b) and (c): class-conditional samples of the base, judged by a classifier of real windows and by motion."""
    names, base, frames = run.class_names, cfg.stages[0], cfg.data.num_frames
    clips, labels = uniform(real, names)
    classifier = train_classifier(clips, labels, len(names), steps=5 if args.quick else 300, seed=args.seed)
    held_clips, held_labels = uniform(held, names)
    accuracy = (classify(classifier, held_clips) == held_labels).float().mean().item()

    per_class, steps = quick.get("per_class", args.per_class), quick.get("ddim_steps", args.ddim_steps)
    asked = torch.arange(len(names)).repeat_interleave(per_class)
    labels = [[int(k)] * frames for k in asked]
    made = sample_cascade(run, labels, frames, steps, args.seed, upto_stage=base.name, guidance_scale=args.guidance)
    verdict = classify(classifier, made)
    print(f"\n(b) class-conditional samples: {per_class} per label, {steps} DDIM steps, guidance {args.guidance:g}; ")
    print("the classifier of real ", end="")
    print(f"windows ({len(clips)} to train on) is right on {accuracy:.1%} of {len(held_clips)} held-out real windows\n")
    print("| label | samples assigned the requested label |\n|---|---|")
    for k, name in enumerate(names):
        print(f"| {name} | {(verdict[asked == k] == k).float().mean().item():.0%} |")
    print(f"| all | {(verdict == asked).float().mean().item():.1%} (chance {1 / len(names):.0%}) |")

    moved, judged = direction_matches(made, [names[k] for k in asked])
    real_moved, real_judged = direction_matches(held_clips, [names[k] for k in held_labels])
    print(f"\n(c) samples moving in their label's direction: {moved}/{judged} = {moved / max(judged, 1):.1%} ")
    print(f"(held-out real windows: {real_moved}/{real_judged} = {real_moved / max(real_judged, 1):.1%})")


def judge_upsamplers(cfg: ScratchConfig, run: ScratchRun, held: Path, args: argparse.Namespace, quick: dict) -> None:
    """(d): each upsampler on held-out real clips against bicubic, from the same low-resolution clip."""
    if len(cfg.stages) < 2:
        print("\n(d) no upsampler stage in the config")
        return
    steps = quick.get("ddim_steps", args.ddim_steps)
    print("\n(d) upsamplers on held-out real clips\n")
    print("| stage | PSNR dB | bicubic dB | gain dB |\n|---|---|---|---|")
    for index, (before, stage) in enumerate(zip(cfg.stages, cfg.stages[1:], strict=False), start=1):
        truth = windows(held, cfg, stage.resolution, limit=quick.get("held_out", args.held_out))["pixel_values"]
        low = resize_clips(truth.permute(0, 2, 1, 3, 4), before.resolution)
        ours = psnr(upsample(run, index, low, steps, args.seed), truth)
        plain = psnr(bicubic(low.permute(0, 2, 1, 3, 4), stage.resolution), truth)
        size = f"{before.resolution}->{stage.resolution}"
        print(f"| {stage.name} ({size}) | {ours:.2f} | {plain:.2f} | {ours - plain:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20, help="CPU minutes of training, all stages together")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the training and of this process (1: the fair CPU-time count)",
    )
    parser.add_argument("--base-share", type=float, default=0.75, help="share of the budget for the base stage")
    parser.add_argument("--videos", type=int, default=8, help="videos of the shapes set (8 s at 8 fps each)")
    parser.add_argument("--per-class", type=int, default=8, help="class-conditional samples per label")
    parser.add_argument("--ddim-steps", type=int, default=25, help="DDIM steps of every sample")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance of the base's samples")
    parser.add_argument("--held-out", type=int, default=8, help="held-out real clips the upsampler is scored on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 steps per stage, tiny sets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = {"seconds": 3, "videos": 2, "per_class": 1, "ddim_steps": 2, "held_out": 2} if args.quick else {}
    seconds, videos = quick.get("seconds", 8), quick.get("videos", args.videos)
    wall, cpu = time.perf_counter(), cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="vidsynth-bench-scratch-") as folder:
        tmp = Path(folder)
        real = make_shapes(tmp / "real", seed=args.seed, num_videos=videos, seconds=seconds)
        held = make_shapes(tmp / "held", seed=args.seed + 1000, num_videos=max(2, videos // 4), seconds=seconds)
        more = make_shapes(tmp / "more", seed=args.seed + 2000, num_videos=2 if args.quick else 16, seconds=seconds)
        cfg, config = bench_config(tmp, real, args.seed)
        real_base, held_base, more_base = (windows(path, cfg, cfg.stages[0].resolution) for path in (real, held, more))
        print(f"Shapes set: labels {real_base['names']}, {len(real_base['labels'])} windows of {cfg.data.num_frames} ")
        print(f"frames; held out: {len(held_base['labels'])}. Stages {[(s.name, s.resolution) for s in cfg.stages]}, ")
        print(f"batch {cfg.train_batch_size}, {args.threads} threads, budget {args.minutes:g} CPU minutes\n")
        curve = train_stages(cfg, config, real_base, args, tmp)
        print("\n(a) base loss curve\n\n| steps | mean loss | elapsed wall s |\n|---|---|---|")
        for first, last, loss, elapsed in curve:
            print(f"| {first}-{last} | {loss:.4f} | {elapsed:.0f} |")
        run = load_run(tmp / "run")
        judge_base(cfg, run, more_base, held_base, args, quick)
        judge_upsamplers(cfg, run, held, args, quick)
    print(f"\nBench total: {time.perf_counter() - wall:.0f} s wall, {cpu_seconds() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
