"""Train a cascade of video diffusion models from scratch on footage: a base model, then its upsamplers.

    python -m vidsynth.scratch train --config configs/scratch/shapes.yaml [key=value ...]
    accelerate launch -m vidsynth.scratch train --config configs/scratch/shapes.yaml [key=value ...]

Reads top to bottom like diffusers' examples/unconditional_image_generation/train_unconditional.py:
accelerate does devices, processes, mixed precision, gradient accumulation, trackers and checkpoints;
diffusers gives the blocks, the DDPM forward process and the EMA of the weights. Stages train one after
the other, each with its own optimizer, EMA, checkpoints (``checkpoints/<stage>/``) and TensorBoard log; a
stage ends with its EMA weights saved as ``<stage>/``. The config, the footage and the output folder are
checked before any model is built, so a bad request fails at once and leaves nothing behind. Every random
draw of a step (its windows, noise, timesteps) comes from a generator seeded by (seed, step), so a run
resumed with ``resume_from_checkpoint=latest`` ends with exactly the weights of an uninterrupted run.
"""

import argparse
import importlib.util
import logging
from pathlib import Path

from tqdm.auto import tqdm

from vidsynth import events
from vidsynth.cli import Interrupted
from vidsynth.config.loader import load_config, save_config
from vidsynth.errors import VidSynthError
from vidsynth.run_folder import checkpoint_step, find_checkpoint, list_checkpoints
from vidsynth.scratch.config import ScratchConfig, StageConfig
from vidsynth.scratch.layout import ScratchRunFolder

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.scratch train", description="Train video diffusion models from scratch on footage."
    )
    parser.add_argument("--config", help="YAML config, e.g. configs/scratch/shapes.yaml (its values are the defaults)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. max_train_steps=100")
    return parser.parse_args(argv)


def open_footage(cfg: ScratchConfig):
    """The footage's windows (checked: videos found, long enough, labels valid); nothing is decoded yet."""
    from vidsynth.scratch.data import FootageWindows

    data = cfg.data
    return FootageWindows(
        Path(data.path),
        num_frames=data.num_frames,
        frame_skip=data.frame_skip,
        resolution=data.resolution,
        labels=Path(data.labels) if data.labels else None,
        cache_dir=Path(data.cache_dir) if data.cache_dir else None,
    )


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    cfg = load_config(ScratchConfig, [args.config] if args.config else [], args.overrides)
    run = ScratchRunFolder(Path(cfg.output_dir).absolute())
    stages = [stage for stage in cfg.stages if cfg.stage in (None, stage.name)]
    resuming = cfg.resume_from_checkpoint is not None
    if resuming and cfg.resume_from_checkpoint != "latest":
        raise VidSynthError(
            f"resume_from_checkpoint takes latest (the newest checkpoint of the stage in progress), "
            f"got {cfg.resume_from_checkpoint!r}. Set resume_from_checkpoint=latest"
        )
    run.check_start([stage.name for stage in stages], resuming, cfg.overwrite)
    dataset = open_footage(cfg)
    if cfg.report_to and importlib.util.find_spec("tensorboard") is None:
        logger.warning("tensorboard is not installed: no logs in %s (pip install tensorboard)", run.logs)
        cfg.report_to = None

    # Only now the heavy libraries, with the modules that use them; the folder is written by the main process.
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from vidsynth.media.writers import write_json
    from vidsynth.scratch.diffusion import noise_scheduler

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as start_accelerator makes it
    if state.is_main_process:
        run.root.mkdir(parents=True, exist_ok=True)
        if cfg.overwrite and not resuming:
            run.clear([stage.name for stage in stages])
        save_config(cfg, run.config)
        noise_scheduler(cfg).save_pretrained(run.scheduler)
        write_json(run.data, footage_record(dataset))
    state.wait_for_everyone()
    for stage in stages:
        if run.trained(stage.name) and resuming:
            logger.info("Stage %s is trained (%s); going on with the next", stage.name, run.stage(stage.name))
            continue
        resume_from = find_checkpoint("latest", run.checkpoints(stage.name)) if resuming else None
        train_stage(cfg, stage, dataset, run, resume_from)
    events.emit("done", output=str(run.root))
    return run.root


def footage_record(dataset) -> dict:
    """What sampling needs to know of the footage (``data.json``)."""
    return {
        "class_names": dataset.class_names,
        "label_dim": dataset.label_dim,
        "fps": dataset.fps,
        "pad_value": dataset.pad_value,
        "windows": len(dataset),
    }


def train_stage(
    cfg: ScratchConfig, stage: StageConfig, dataset, run: ScratchRunFolder, resume_from: Path | None
) -> None:
    """Train one stage from its start (or ``resume_from``) to its last step; save its EMA weights as ``<stage>/``."""
    import torch
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    from vidsynth.atomic import atomic_path
    from vidsynth.scratch.batches import StageBatch, window_loader
    from vidsynth.scratch.diffusion import drop_labels, noise_scheduler, training_loss
    from vidsynth.scratch.model import build_unet
    from vidsynth.scratch.validation import Validation
    from vidsynth.training.checkpoints import save_checkpoint
    from vidsynth.training.devices import start_accelerator
    from vidsynth.training.step import step_generator

    accelerator = start_accelerator(cfg, run)  # one per stage: its own models, checkpoints and log
    set_seed(cfg.seed)  # the weights' initial values
    unet = build_unet(stage, len(dataset.class_names or []), dataset.label_dim)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=cfg.adam_weight_decay)
    ema = None
    if cfg.ema:
        ema = EMAModel(unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    scheduler = noise_scheduler(cfg)
    before = cfg.previous(stage)
    total = cfg.stage_steps(stage)
    step = 0
    if resume_from is not None:
        step = checkpoint_step(resume_from)
        logger.info("Resuming stage %s from %s (step %d of %d)", stage.name, resume_from, step, total)
        accelerator.load_state(str(resume_from))
    if accelerator.is_main_process and cfg.report_to:
        accelerator.init_trackers(stage.name)
    validation = Validation(cfg, stage, dataset, run, dict(scheduler.config))
    batches = iter(window_loader(dataset, cfg, range(step, total), accelerator.process_index))

    def with_ema_weights(action):
        model = accelerator.unwrap_model(unet)
        if ema is not None:
            ema.store(model.parameters())
            ema.copy_to(model.parameters())
        try:
            return action(model)
        finally:
            if ema is not None:
                ema.restore(model.parameters())

    on_main = accelerator.is_local_main_process
    progress = tqdm(total=total, initial=step, unit="step", desc=f"Training {stage.name}", disable=not on_main)
    events.begin("training", total, step=step, model=stage.name)
    try:
        while step < total:
            loss_sum = 0.0
            for micro_step in range(cfg.gradient_accumulation_steps):
                with accelerator.accumulate(unet):
                    batch = StageBatch.of(next(batches), stage, before, accelerator.device)
                    generator = step_generator(cfg.seed, step, micro_step, accelerator.process_index)
                    labels = drop_labels(accelerator.unwrap_model(unet), batch.labels, cfg.label_dropout, generator)
                    with accelerator.autocast():
                        loss = training_loss(unet, scheduler, batch.clips, labels, batch.low_res, generator)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                loss_sum += accelerator.gather(loss.detach()).mean().item() / cfg.gradient_accumulation_steps
            if ema is not None:
                ema.step(unet.parameters())
            step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum:.4f}")
            events.progress("training", step, total, loss=loss_sum, model=stage.name)
            accelerator.log({"loss": loss_sum}, step=step)
            if step % cfg.checkpointing_steps == 0 and accelerator.is_main_process:
                folder = run.checkpoints(stage.name)
                logger.info("Saved %s", save_checkpoint(accelerator, folder, step, cfg.checkpoints_total_limit))
            if validation.due(step) and accelerator.is_main_process:
                with_ema_weights(lambda model, done=step: validation.render(model, done, accelerator.device))
        progress.close()
        events.end("training")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            with atomic_path(run.stage(stage.name), folder=True, replace=True) as partial:
                with_ema_weights(lambda model: model.save_pretrained(partial))
            logger.info("Trained stage %s for %d steps: %s", stage.name, step, run.stage(stage.name))
    except KeyboardInterrupt:
        progress.close()
        raise _interrupted(run, stage, step, total) from None
    accelerator.wait_for_everyone()
    accelerator.end_training()


def _interrupted(run: ScratchRunFolder, stage: StageConfig, step: int, total: int) -> Interrupted:
    saved = list_checkpoints(run.checkpoints(stage.name))
    kept = f"{saved[-1]} kept (resume with resume_from_checkpoint=latest)" if saved else "no checkpoint saved yet"
    return Interrupted(f"stage {stage.name}: {step} of {total} steps done; {kept}")
