"""One-shot tuning (Tune-A-Video): tune the inflated SD-1.x UNet on one clip and the prompt that describes it.

    python train.py --config configs/clip.yaml [key=value ...]     # or: python -m vidsynth.train ...
    accelerate launch train.py --config configs/clip.yaml [key=value ...]

Reads top to bottom like diffusers' examples/dreambooth/train_dreambooth_lora.py; accelerate does
devices, mixed precision, gradient accumulation, checkpoints and resuming. What differs from the
original Tune-A-Video script, and why:

* every check of the request (config keys and types, the clip, sizes, the model folder, the output
  folder) runs before a model loads, so a typo fails in a second and leaves nothing behind;
* the clip is encoded by the VAE once and the prompt by the text encoder once (their inputs never
  change); each step draws a fresh VAE posterior sample from the cached mean and std, as the
  original's per-step ``latent_dist.sample()`` does;
* every random draw of a step comes from a generator seeded by (seed, step), so a run killed at any
  step and resumed ends with exactly the weights of an uninterrupted run;
* ``window_sampling: random`` tunes on a long clip: each step (and each process) sees a window of
  ``n_sample_frames`` drawn anywhere in the span, out of latents encoded once for the whole span;
* checkpoints and the result hold only the trained parameters, not the 3.4 GB UNet: for SD-1.x
  74.4 M of them, 297.5 MB in float32 (``save_dtype: fp16`` or ``bf16`` halves the result;
  checkpoints stay float32, plus Adam's state, so that resuming is exact);
* Ctrl-C while tuning ends with one line that says which checkpoint was kept and how to resume.
"""

import vidsynth.quiet  # noqa: F401  (first: the libraries' start-up chatter off before they load)

import argparse
import logging
import math
import random
from pathlib import Path

import diffusers
import torch
import transformers
from accelerate import Accelerator, PartialState
from accelerate.utils import ProjectConfiguration, parse_flag_from_env, set_seed
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from vidsynth.cli import Interrupted, run_main
from vidsynth.config import TrainConfig, load_config, save_config
from vidsynth.editing.validation import render_validation, validation_pipeline
from vidsynth.errors import VidSynthError
from vidsynth.media.video import read_clip
from vidsynth.models import VideoUNet
from vidsynth.run_folder import RunFolder, checkpoint_step, list_checkpoints
from vidsynth.testing.tiny_models import resolve_model
from vidsynth.training.checkpoints import (
    checkpoint_seed,
    find_checkpoint,
    register_trained_param_hooks,
    save_checkpoint,
)
from vidsynth.training.encode import encode_posterior
from vidsynth.training.optimizer import build_optimizer, check_8bit_adam
from vidsynth.training.preflight import check_request, validation_notes
from vidsynth.training.result import write_result
from vidsynth.training.step import check_prediction_type, diffusion_loss, step_generator
from vidsynth.training.unet_setup import prepare_unet, resolve_mixed_precision

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One-shot tuning of the video UNet on one clip (Tune-A-Video).")
    parser.add_argument("--config", help="YAML config, e.g. configs/clip.yaml (its values are the defaults)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train_data.n_sample_frames=8"
    )
    return parser.parse_args(argv)


def resolve_seed(requested: int | None, resume_from: Path | None) -> int:
    """The seed of the run: a resumed run keeps its checkpoint's; none asked for means a fresh random one."""
    if resume_from is not None:
        saved = checkpoint_seed(resume_from)
        if requested is not None and requested != saved:
            logger.warning(
                "%s was tuned with seed %d; resuming with it, not with seed %d", resume_from, saved, requested
            )
        return saved
    return requested if requested is not None else random.SystemRandom().randrange(2**31)


def interrupted(run: RunFolder, steps_done: int, max_steps: int) -> Interrupted:
    """Ctrl-C while tuning: what the output folder keeps (every file in it is complete, see vidsynth.atomic)."""
    saved = list_checkpoints(run.checkpoints)
    if saved:
        kept = f"{saved[-1].name} kept in {run.checkpoints} (resume with resume_from_checkpoint=latest)"
    else:
        kept = "no checkpoint was saved yet (checkpointing_steps sets how often), so a rerun starts over"
    return Interrupted(f"{steps_done} of {max_steps} steps done; {kept}")


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    cfg = load_config(TrainConfig, [args.config] if args.config else [], args.overrides)
    cfg.pretrained_model_path = resolve_model(cfg.pretrained_model_path)  # ``tiny``: the offline tiny SD's folder
    # accelerate launch --cpu sets ACCELERATE_USE_CPU, which Accelerator reads; the first state made must read it too,
    # or it settles on the GPU, and processes started on a machine without one each run alone as process 0.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if not state.is_main_process:
        logger.setLevel(logging.ERROR)  # each message once, from the main process

    # Check the whole request before any model loads: config, base model, clip, sizes, output folder.
    clip_info, span, trainable_count = check_request(cfg)
    run = RunFolder(Path(cfg.output_dir))
    resume_from = find_checkpoint(cfg.resume_from_checkpoint, run.checkpoints)
    if cfg.resume_from_checkpoint and resume_from is None:
        logger.info("No checkpoint in %s to resume from; starting a new run", run.checkpoints)
    run.check_start(resuming=resume_from is not None, overwrite=cfg.overwrite)
    mixed_precision = resolve_mixed_precision(cfg.mixed_precision, state.device.type)
    if mixed_precision != cfg.mixed_precision:
        logger.warning(
            "mixed_precision %s needs a GPU; running with %s on the CPU", cfg.mixed_precision, mixed_precision
        )
    if cfg.use_8bit_adam:
        check_8bit_adam()
    for note in validation_notes(cfg):
        logger.warning(note)
    if cfg.enable_xformers_memory_efficient_attention:
        logger.warning("enable_xformers_memory_efficient_attention is ignored: PyTorch's SDPA attention is always used")
    seed = resolve_seed(cfg.seed, resume_from)
    # The saved config records what actually ran, with absolute paths so inference.py finds them from anywhere.
    cfg.seed, cfg.mixed_precision = seed, mixed_precision
    cfg.train_data.video_path = clip_info.path
    cfg.train_data.sample_end_idx = span.frames.stop  # the span's end as used: null is saved as the clip's length
    if Path(cfg.pretrained_model_path).exists():
        cfg.pretrained_model_path = str(Path(cfg.pretrained_model_path).absolute())

    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(run.root), logging_dir=str(run.logs)),
    )
    if not accelerator.is_local_main_process:
        transformers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()
    set_seed(seed)  # the temporal layers' initial q/k/v weights are random

    # The span range(start, end, stride): its first window (fixed) or all of it (random), resized, in [-1, 1].
    data = cfg.train_data
    clip = read_clip(
        clip_info, span.frames_read, data.width, data.height, data.sample_start_idx, data.sample_frame_rate
    )
    # Validation edits the span's first window, the frames a fixed run tunes on, so validations stay comparable.
    validation_clip = clip.first(span.window)  # the same frames, not decoded a second time

    # Load the noise scheduler and the models; inflate the UNet.
    model = cfg.pretrained_model_path
    noise_scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(model, subfolder="scheduler"))
    check_prediction_type(noise_scheduler)
    unet = VideoUNet.from_pretrained_2d(
        model, subfolder="unet", frame_norm=cfg.frame_norm, temporal_out_bias_init=cfg.temporal_out_bias_init
    )
    pipeline = validation_pipeline(model, unet, accelerator.device)  # VAE, text encoder, tokenizer around the UNet

    # Encode the clip and the prompt once; no step runs the VAE or the text encoder, so they are freed.
    clip_latents = encode_posterior(pipeline.vae, clip.pixel_frames())  # posterior mean and std, (1, 4, F, h, w) each
    validation_latents = clip_latents.window(0, span.window)  # (1, 4, W, h, w)
    with torch.no_grad():
        text_embeddings = pipeline.encode_prompt(data.prompt, accelerator.device, 1, False)[0].float()  # (1, 77, D)
    del pipeline  # validation loads them again while it runs

    # What trains: the selected modules in float32 (and their Adam state); the frozen rest in frozen_dtype.
    trained_params = prepare_unet(unet, cfg.trainable_modules, cfg.frozen_dtype, cfg.gradient_checkpointing)

    # Optimizer over the trained parameters only, and the learning-rate schedule.
    learning_rate = cfg.learning_rate
    if cfg.scale_lr:
        learning_rate *= cfg.gradient_accumulation_steps * cfg.train_batch_size * accelerator.num_processes
    optimizer = build_optimizer(trained_params, cfg, learning_rate)
    lr_scheduler = get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.max_train_steps * accelerator.num_processes,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    register_trained_param_hooks(accelerator, model, cfg.trainable_modules, seed)

    # The output folder appears only now that everything has loaded.
    if accelerator.is_main_process:
        run.prepare(resuming=resume_from is not None, overwrite=cfg.overwrite)
        save_config(cfg, run.config)
        if cfg.report_to:
            accelerator.init_trackers("vidsynth")
    global_step = 0
    if resume_from is not None:
        global_step = checkpoint_step(resume_from)
        logger.info("Resuming from %s (step %d of %d)", resume_from, global_step, cfg.max_train_steps)
        accelerator.load_state(str(resume_from))

    logger.info("***** Tuning *****")
    frames = clip.frame_indices
    logger.info(
        "  Clip: %s, %d frames (%d to %d, stride %d) at %dx%d",
        clip.path,
        len(frames),
        frames[0],
        frames[-1],
        clip.stride,
        clip.width,
        clip.height,
    )
    if span.sampling == "random":
        logger.info("  Windows: %d consecutive of these frames per step, drawn at random", span.window)
    logger.info("  Prompt: %r; trained parameters: %.2fM", data.prompt, trainable_count / 1e6)
    logger.info(
        "  Steps: %d, batch %d, accumulation %d",
        cfg.max_train_steps,
        cfg.train_batch_size,
        cfg.gradient_accumulation_steps,
    )
    logger.info(
        "  Device: %s x %d process(es); mixed precision %s, frozen weights %s; seed %d",
        accelerator.device,
        accelerator.num_processes,
        mixed_precision,
        cfg.frozen_dtype,
        seed,
    )

    def validate(step: int) -> None:
        if accelerator.is_main_process:
            unet.eval()
            pipeline = validation_pipeline(model, accelerator.unwrap_model(unet), accelerator.device, cfg.frozen_dtype)
            with accelerator.autocast():
                folder = run.samples / f"sample-{step}"
                render_validation(
                    pipeline, model, validation_clip, validation_latents, cfg.validation_data, folder, seed
                )
            unet.train()

    progress = tqdm(
        total=cfg.max_train_steps,
        initial=global_step,
        unit="step",
        desc="Tuning",
        disable=not accelerator.is_local_main_process,
    )
    try:
        validated_at = None
        while global_step < cfg.max_train_steps:
            step_loss = 0.0
            for micro_step in range(cfg.gradient_accumulation_steps):
                with accelerator.accumulate(unet):
                    generator = step_generator(seed, global_step, micro_step, accelerator.process_index)
                    window_start = span.draw(generator)  # each process its own window: data parallel over the span
                    loss = diffusion_loss(
                        unet,
                        noise_scheduler,
                        clip_latents.window(window_start, span.window),
                        text_embeddings,
                        generator,
                        batch_size=cfg.train_batch_size,
                        sample_posterior=cfg.latent_sampling == "sample",
                    )
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(trained_params, cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                step_loss += accelerator.gather(loss.detach()).mean().item() / cfg.gradient_accumulation_steps
                if span.sampling == "random":  # where each process's window starts, in source frames
                    starts = accelerator.gather(torch.tensor([span.frames[window_start]], device=accelerator.device))
                    windows = {f"window_start/process_{i}": start for i, start in enumerate(starts.tolist())}
                    accelerator.log(windows, step=global_step + 1)
            global_step += 1
            if not math.isfinite(step_loss):
                raise VidSynthError(
                    f"the loss is {step_loss} at step {global_step}: tuning diverged. "
                    "Lower learning_rate, or set mixed_precision=no"
                )
            lr = lr_scheduler.get_last_lr()[0]
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            accelerator.log({"loss": step_loss, "lr": lr}, step=global_step)

            if global_step % cfg.checkpointing_steps == 0 and accelerator.is_main_process:
                path = save_checkpoint(accelerator, run.checkpoints, global_step, cfg.checkpoints_total_limit)
                logger.info("Saved %s", path)
            if cfg.validation_data.prompts and global_step % cfg.validation_steps == 0:
                validate(global_step)
                validated_at = global_step
        progress.close()
        if cfg.validation_data.prompts and validated_at != global_step:
            validate(global_step)

        # The result: trained parameters only (plus the full pipeline when asked), renamed into place last.
        accelerator.wait_for_everyone()
        result = run.result
        if accelerator.is_main_process:
            result = write_result(accelerator.unwrap_model(unet), run, cfg, clip, global_step, seed)
            logger.info("Tuned %d steps; result: %s", global_step, result)
    except KeyboardInterrupt:
        progress.close()
        raise interrupted(run, global_step, cfg.max_train_steps) from None
    # Every process ends together. A process that tore its process group down at once could hang for good on the
    # CPU: gloo's worker thread may still be releasing the last collective's tensors, which needs the GIL that the
    # process group's destructor holds while it joins that thread.
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


if __name__ == "__main__":
    run_main(main)
