"""The per-frame baseline: Stable Diffusion img2img run on every frame on its own (the original VidSynth).

This is what Tune-A-Video has to beat: no temporal layers, no tuning, no inversion; each frame is
noised to ``strength`` and denoised towards the prompt by diffusers' ``StableDiffusionImg2ImgPipeline``.
To make the comparison fair it runs with the main method's settings: the same clip sampling
(``vidsynth.media.video.read_clip``), DDIM with the model's noise schedule, the same steps, guidance,
negative prompt and seed. Every frame gets a fresh generator seeded with that seed, so all frames see
the same noise (the least flicker per-frame editing can have) and frame i's result does not depend on
which frames share its batch. With structure guidance it is diffusers'
``StableDiffusionControlNetImg2ImgPipeline`` with the same ControlNets, maps and scales.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import DDIMScheduler
from tqdm import tqdm

from vidsynth import events
from vidsynth.errors import VidSynthError

if TYPE_CHECKING:
    from diffusers import ControlNetModel, MultiControlNetModel, StableDiffusionImg2ImgPipeline

logger = logging.getLogger(__name__)


def load_img2img_pipeline(
    base_model: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    controlnet: ControlNetModel | MultiControlNetModel | None = None,
) -> StableDiffusionImg2ImgPipeline:
    """Load an SD-1.x model (folder or hub id) as an img2img pipeline with DDIM, without safety checker.

    The scheduler is DDIM built from the model's scheduler config, as the main pipeline's is (SD
    folders name PNDM), so both methods walk the same timesteps. With ``controlnet``: the ControlNet
    img2img pipeline around it.
    """
    # Imported here: diffusers' SD pipeline module pulls in transformers' image processors (for the
    # safety checker), a slow import with torchvision warnings that Tune-A-Video-only runs need not pay.
    from diffusers import StableDiffusionControlNetImg2ImgPipeline, StableDiffusionImg2ImgPipeline

    pipeline_class, extra = StableDiffusionImg2ImgPipeline, {}
    if controlnet is not None:
        pipeline_class, extra = StableDiffusionControlNetImg2ImgPipeline, {"controlnet": controlnet}
    try:
        pipe = pipeline_class.from_pretrained(
            str(base_model),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            dtype=dtype,
            **extra,
        )
    except (OSError, ValueError) as err:
        raise VidSynthError(
            f"cannot load the SD-1.x model {str(base_model)!r} for img2img ({str(err).splitlines()[0]}). "
            "Point --base at a local SD-1.x folder such as ./checkpoints/stable-diffusion-v1-4"
        ) from err
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.vae.enable_slicing()  # decode one frame at a time, like the main pipeline
    pipe.set_progress_bar_config(disable=True)  # one bar over the frames instead of one per batch
    return pipe.to(device)


def denoising_steps(num_inference_steps: int, strength: float) -> int:
    """The DDIM steps img2img actually runs: the last ``int(steps × strength)`` of the schedule (diffusers' rule)."""
    return min(int(num_inference_steps * strength), num_inference_steps)


def check_strength(strength: float, num_inference_steps: int) -> None:
    """``strength`` must be in (0, 1] and leave at least one denoising step."""
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0.0 < strength <= 1.0:
        raise VidSynthError(
            f"strength must be a number in (0, 1], got {strength!r}. Use e.g. 0.5 "
            "(0 keeps the frame, 1 replaces it with noise)"
        )
    if denoising_steps(num_inference_steps, strength) < 1:
        raise VidSynthError(
            f"strength {strength} with {num_inference_steps} steps leaves no denoising step "
            f"(int(steps × strength) = 0). Raise strength to at least {1 / num_inference_steps:.3g} or use more steps"
        )


def _check_inputs(pixels: torch.Tensor, prompts: list[str], batch_size: int, num_inference_steps: int) -> None:
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise VidSynthError(f"prompts must be a non-empty list of strings, got {prompts!r}. Give at least one prompt")
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or pixels.shape[1] != 3:
        shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise VidSynthError(
            f"pixels must be a tensor (frames, 3, H, W) in [-1, 1], got {shape}. Pass Clip.pixels of read_clip"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise VidSynthError(f"batch_size must be a positive integer, got {batch_size!r}. Use e.g. 4")
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise VidSynthError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}. Use e.g. 50")


@torch.no_grad()
def render_img2img(
    pipe: StableDiffusionImg2ImgPipeline,
    pixels: torch.Tensor,
    prompts: Sequence[str],
    *,
    strength: float = 0.5,
    num_inference_steps: int = 50,
    guidance_scale: float = 12.5,
    negative_prompt: str | None = None,
    seed: int = 33,
    batch_size: int = 4,
    control: dict | None = None,
) -> list[np.ndarray]:
    """Edit every frame of ``pixels`` (F, 3, H, W) in [-1, 1] (``Clip.pixels``) once per prompt.

    ``strength`` in (0, 1]: how far each frame is noised before denoising (img2img runs the last
    ``int(num_inference_steps × strength)`` DDIM steps). Frames go through the pipeline
    ``batch_size`` at a time. Returns one video per prompt, (3, F, H, W) float32 in [0, 1], laid out
    like the main pipeline's edits. ``control``: for a ControlNet pipeline, the video pipeline's
    ControlNet arguments (``conditioning_frames``: (F, 3, H, W) in [0, 1], or a list of them, one per
    ControlNet; ``controlnet_conditioning_scale``; ``control_guidance_start``/``end``).
    """
    prompts = list(prompts)
    _check_inputs(pixels, prompts, batch_size, num_inference_steps)
    check_strength(strength, num_inference_steps)
    frames = ((pixels.float() + 1) / 2).clamp(0, 1)  # (F, 3, H, W) in [0, 1], the range diffusers expects
    num_frames = frames.shape[0]
    batches = [range(i, min(i + batch_size, num_frames)) for i in range(0, num_frames, batch_size)]
    logger.info(
        "img2img on %d frames x %d prompt(s): %d of %d DDIM steps per frame (strength %g)",
        num_frames,
        len(prompts),
        denoising_steps(num_inference_steps, strength),
        num_inference_steps,
        strength,
    )
    videos = []
    total = num_frames * len(prompts)
    with tqdm(total=total, desc="img2img", unit="frame") as progress, events.stage("img2img", total):
        for prompt in prompts:
            edited = []
            for batch in batches:
                # One generator per frame, all seeded alike (on the CPU: the same noise on every device).
                generators = [torch.Generator("cpu").manual_seed(seed) for _ in batch]
                output = pipe(
                    **_control_batch(control, batch),
                    prompt=[prompt] * len(batch),
                    image=frames[batch.start : batch.stop],
                    strength=strength,
                    num_inference_steps=num_inference_steps,
                    guidance_scale=guidance_scale,
                    negative_prompt=None if negative_prompt is None else [negative_prompt] * len(batch),
                    generator=generators,
                    output_type="pt",
                )
                edited.append(output.images.float().cpu())  # (b, 3, H, W) in [0, 1]
                progress.update(len(batch))
                events.progress("img2img", progress.n, progress.total)
            video = torch.cat(edited).permute(1, 0, 2, 3)  # (F, 3, H, W) -> (3, F, H, W)
            videos.append(video.numpy())
    return videos


def _control_batch(control: dict | None, batch: range) -> dict:
    """The ControlNet img2img pipeline's arguments for the frames of ``batch`` (nothing without control)."""
    if not control:
        return {}
    maps = control["conditioning_frames"]
    images = [m[batch.start : batch.stop] for m in maps] if isinstance(maps, list) else maps[batch.start : batch.stop]
    options = {k: v for k, v in control.items() if k != "conditioning_frames"}
    return {"control_image": images, **options}
