"""One-shot tuning (Tune-A-Video): tune the inflated SD-1.x UNet on one clip and the prompt that describes it.

    python train.py --config configs/clip.yaml [key=value ...]     # or: python -m vidsynth.train ...
    accelerate launch train.py --config configs/clip.yaml [key=value ...]

Reads top to bottom like diffusers' examples/dreambooth/train_dreambooth_lora.py; accelerate does
devices, mixed precision, gradient accumulation, checkpoints and resuming. What differs from the
original Tune-A-Video script, and why:

* every check of the request (config keys and types, the model folder, the clip, sizes, the span,
  the output folder) runs before torch, diffusers and accelerate are even imported, so ``--help`` and
  a typo answer in a second and leave nothing behind; the few checks that need diffusers (the UNet's
  config, ``trainable_modules``) come next, still before any weight loads;
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
* validation is a stage of its own, at steps a stated rule gives (every ``validation_steps``, and at
  the end only when ``validation_steps <= max_train_steps``: ``vidsynth.training.schedule``), each
  announced with its prompts, size and steps; a resumed run renders again the samples after its
  checkpoint;
* ``lora_rank`` tunes LoRA adapters (peft) instead of the pretrained projections' weights: the result is
  diffusers' ``pytorch_lora_weights.safetensors`` (a few MB) plus the temporal layers, or with
  ``lora_temporal`` the adapters alone, the temporal layers starting from values drawn from the seed;
* Ctrl-C while tuning ends with one line that says which checkpoint was kept and how to resume.
"""

import argparse
import logging
import random
from pathlib import Path

from tqdm.auto import tqdm

from vidsynth import events
from vidsynth.cli import Interrupted, run_main
from vidsynth.config import TrainConfig, load_config, save_config
from vidsynth.media.video import VideoInfo
from vidsynth.run_folder import RunFolder, checkpoint_step, find_checkpoint, list_checkpoints
from vidsynth.training.preflight import check_inputs, check_training, request_notes
from vidsynth.training.schedule import ValidationSchedule
from vidsynth.training.span import TuningSpan

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
        from vidsynth.training.checkpoints import checkpoint_seed

        saved = checkpoint_seed(resume_from)
        if requested is not None and requested != saved:
            logger.warning(
                "%s was tuned with seed %d; resuming with it, not with seed %d", resume_from, saved, requested
            )
        return saved
    return requested if requested is not None else random.SystemRandom().randrange(2**31)


def resolve_config(cfg: TrainConfig, clip_info: VideoInfo, span: TuningSpan, resume_from: Path | None) -> int:
    """Fill in what the config leaves open, so that the saved config records what actually ran: the seed (returned),
    the span's end (null is saved as the clip's length) and absolute paths, so inference.py finds them from anywhere."""
    cfg.seed = resolve_seed(cfg.seed, resume_from)
    cfg.train_data.video_path = clip_info.path
    cfg.train_data.sample_end_idx = span.frames.stop
    if Path(cfg.pretrained_model_path).exists():
        cfg.pretrained_model_path = str(Path(cfg.pretrained_model_path).absolute())
    return cfg.seed


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

    # Check the request before torch, diffusers and accelerate load (seconds): config, model path, clip, sizes,
    # span, output folder. A typo fails at once and leaves nothing behind.
    video, span = check_inputs(cfg)
    run = RunFolder(Path(cfg.output_dir))
    resume_from = find_checkpoint(cfg.resume_from_checkpoint, run.checkpoints)
    run.check_start(resuming=resume_from is not None, overwrite=cfg.overwrite)
    schedule = ValidationSchedule.of(cfg)

    # Only now the heavy libraries (torch, diffusers, accelerate), with the modules that use them.
    from accelerate.utils import set_seed

    from vidsynth.editing.validation import Validation
    from vidsynth.media.video import read_clip
    from vidsynth.models import VideoUNet
    from vidsynth.training.checkpoints import register_trained_param_hooks, save_checkpoint
    from vidsynth.training.devices import start_accelerator
    from vidsynth.training.encode import encode_inputs
    from vidsynth.training.header import tuning_header
    from vidsynth.training.loop import TuningStep
    from vidsynth.training.optimizer import build_lr_scheduler, build_optimizer, scaled_learning_rate
    from vidsynth.training.result import write_result
    from vidsynth.training.step import training_scheduler
    from vidsynth.training.unet_setup import lora_spec, prepare_unet

    trainable_count = check_training(cfg)  # what needs them: the UNet's config, trainable_modules, 8-bit Adam
    accelerator = start_accelerator(cfg, run)  # cfg.mixed_precision: as it runs on this device
    for note in request_notes(cfg):
        logger.warning(note)
    if cfg.resume_from_checkpoint and resume_from is None:
        logger.info("No checkpoint in %s to resume from; starting a new run", run.checkpoints)
    seed = resolve_config(cfg, video, span, resume_from)  # the seed, the span's end, absolute paths
    set_seed(seed)  # the temporal layers' initial q/k/v weights are random

    # The span range(start, end, stride): its first window (fixed) or all of it (random), resized, in [-1, 1].
    data, model = cfg.train_data, cfg.pretrained_model_path
    clip = read_clip(video, span.frames_read, data.width, data.height, data.sample_start_idx, data.sample_frame_rate)

    # Load the noise scheduler and the models; inflate the UNet.
    noise_scheduler = training_scheduler(model)
    unet = VideoUNet.from_pretrained_2d(
        model, subfolder="unet", frame_norm=cfg.frame_norm, temporal_out_bias_init=cfg.temporal_out_bias_init
    )
    # Encode the clip and the prompt once, with the VAE and the text encoder loaded only for it: no step runs them.
    clip_latents, text_embeddings = encode_inputs(model, unet, accelerator.device, clip, data.prompt)
    # Validation edits the span's first window, the frames a fixed run tunes on, so validations stay comparable.
    window, window_latents = clip.first(span.window), clip_latents.window(0, span.window)
    validation = Validation(model, window, window_latents, cfg.validation_data, run, seed, cfg.frozen_dtype)

    # What trains: the selected modules in float32 (and their Adam state; the optimizer sees only them), or with
    # lora_rank LoRA adapters (plus the temporal layers unless lora_temporal), the frozen rest stored in
    # frozen_dtype; then the learning-rate schedule.
    lora = lora_spec(cfg, unet, seed)  # None: full tuning
    trained_params = prepare_unet(unet, cfg.trainable_modules, cfg.frozen_dtype, cfg.gradient_checkpointing, lora)
    optimizer = build_optimizer(trained_params, cfg, scaled_learning_rate(cfg, accelerator.num_processes))
    lr_scheduler = build_lr_scheduler(optimizer, cfg, accelerator.num_processes)
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    register_trained_param_hooks(accelerator, model, cfg.trainable_modules, seed, lora.record() if lora else None)

    # The output folder appears only now that everything has loaded; a resumed run renders again what it redoes.
    global_step = 0 if resume_from is None else checkpoint_step(resume_from)
    if accelerator.is_main_process:
        run.prepare(resumed_at=global_step if resume_from else None, overwrite=cfg.overwrite)
        save_config(cfg, run.config)
        if cfg.report_to:
            accelerator.init_trackers("vidsynth")
    if resume_from is not None:
        logger.info("Resuming from %s (step %d of %d)", resume_from, global_step, cfg.max_train_steps)
        accelerator.load_state(str(resume_from))
    for line in tuning_header(cfg, clip, span, trainable_count, accelerator, schedule, validation.describe()):
        logger.info(line)

    def validate(step: int) -> None:
        if accelerator.is_main_process:
            unet.eval()
            with accelerator.autocast():
                validation.render(accelerator.unwrap_model(unet), accelerator.device, step)
            unet.train()

    tuning_step = TuningStep(accelerator, unet, optimizer, lr_scheduler, noise_scheduler, cfg, seed)
    on_main = accelerator.is_local_main_process
    progress = tqdm(total=cfg.max_train_steps, initial=global_step, unit="step", desc="Tuning", disable=not on_main)
    events.begin("tuning", cfg.max_train_steps, step=global_step)
    try:
        if schedule.due(global_step) and not run.sample(global_step).exists():
            validate(global_step)  # the resumed checkpoint's edits, if its run stopped before rendering them
        while global_step < cfg.max_train_steps:
            loss = tuning_step(global_step, clip_latents, text_embeddings, span)
            global_step += 1
            lr = lr_scheduler.get_last_lr()[0]
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            events.progress("tuning", global_step, cfg.max_train_steps, loss=loss, lr=lr)
            accelerator.log({"loss": loss, "lr": lr}, step=global_step)
            if global_step % cfg.checkpointing_steps == 0 and accelerator.is_main_process:
                path = save_checkpoint(accelerator, run.checkpoints, global_step, cfg.checkpoints_total_limit)
                logger.info("Saved %s", path)
            if schedule.due(global_step):
                validate(global_step)
        progress.close()
        events.end("tuning")

        # The result: trained parameters only (plus the full pipeline when asked), renamed into place last.
        accelerator.wait_for_everyone()
        result = run.result
        if accelerator.is_main_process:
            result = write_result(accelerator.unwrap_model(unet), run, cfg, clip, global_step, seed, lora)
            logger.info("Tuned %d steps; result: %s", global_step, result)
            events.emit("done", output=str(result))
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
