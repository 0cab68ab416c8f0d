"""Rendering the edits of one resolved request: the video pipeline (with cached inversion) or img2img.

An edit is the clip's latents DDIM-inverted once (or, without inversion, seeded noise) and then
sampled with each new prompt. Every prompt starts from the same latents and from a generator seeded
with the same seed, so an edit does not depend on which other prompts were rendered with it, and
re-running one prompt with the seed of its sidecar gives the same video. ``inference.py``, ``--compare``
and the validation edits while tuning all come through here. With structure guidance both methods get
the same ControlNets, maps (``vidsynth.control``) and scales.

Memory does not grow with the clip beyond its latents: the VAE encodes and decodes a few frames at a
time, the UNet runs over windows of the clip (``vidsynth/models/windows.py``), and the edited frames
are kept as uint8.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth import events
from vidsynth.atomic import atomic_path
from vidsynth.config.inference import InferenceConfig
from vidsynth.editing.baseline import load_img2img_pipeline, render_img2img
from vidsynth.editing.request import EditRequest
from vidsynth.errors import VidSynthError
from vidsynth.media.video import Clip
from vidsynth.models.lora_stack import apply_loras
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.pipelines.loading import load_pipeline
from vidsynth.regions.blend import LatentBlend

logger = logging.getLogger(__name__)

VAE_CHUNK = 8  # frames through the VAE at once: bounds its activations (and the float32 frames) on long clips


def encode_clip(pipe: TuneAVideoPipeline, clip: Clip) -> torch.Tensor:
    """The clip's latents (1, 4, F, h, w) (posterior mean, scaled), encoded :data:`VAE_CHUNK` frames at a time."""
    chunks = [
        pipe.encode_video(clip.pixel_chunk(start, start + VAE_CHUNK))  # (1, 4, chunk, h, w)
        for start in range(0, len(clip.frames), VAE_CHUNK)
    ]
    return torch.cat(chunks, dim=2)


def _read_inversion(path: Path | None, shape: tuple[int, ...]) -> torch.Tensor | None:
    """The cached inversion in ``path`` if it can be read and has ``shape``; else None (it is only a cache)."""
    if path is None or not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file raises one of several types
        logger.warning("Ignoring unreadable inversion cache %s (%s)", path, err)
        return None
    if not isinstance(cached, torch.Tensor) or tuple(cached.shape) != shape:
        logger.warning("Ignoring inversion cache %s: it does not fit this clip", path)
        return None
    logger.info("DDIM inversion read from cache %s", path)
    return cached


def invert_clip(
    pipe: TuneAVideoPipeline,
    video_latents: torch.Tensor,
    config: InferenceConfig,
    cache_path: str | Path | None = None,
    every_step: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """``pipe.invert(video_latents)`` (prompt "") with ``config``'s steps and windows, cached in ``cache_path``.

    ``every_step``: the whole trajectory instead, x0 first (one more entry than steps), as a region edit's
    latent blending needs it; cached beside the plain inversion, in ``<cache_path stem>-steps.pt``. The
    caller keys the cache file on everything the result depends on (model, clip, size, steps, dtype); a
    cache file that cannot be read or does not fit is ignored and rewritten.
    """
    path = Path(cache_path) if cache_path is not None else None
    shape = tuple(video_latents.shape)
    if every_step:
        path = path.with_name(f"{path.stem}-steps.pt") if path is not None else None
        shape = (config.inversion_steps + 1, *shape)
    cached = _read_inversion(path, shape)
    if cached is not None:
        return [step.to(video_latents.device, video_latents.dtype) for step in cached] if every_step else cached
    inverted = pipe.invert(
        video_latents,
        num_inference_steps=config.inversion_steps,
        return_all=every_step,
        window=config.window,
        window_overlap=config.window_overlap,
    )  # (b, 4, F, h, w), or a list of them from x0 on
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save((torch.stack(inverted) if every_step else inverted).cpu(), tmp)
    return inverted


def control_arguments(config: InferenceConfig, control_maps: list[np.ndarray]) -> dict:
    """The pipelines' ControlNet arguments for ``control_maps`` (one (F, H, W, 3) uint8 video per control).

    ``config`` is resolved (:func:`vidsynth.editing.request.resolve_request`): one scale per control. Without
    maps: no arguments.
    """
    if not control_maps:
        return {}
    frames = [torch.from_numpy(maps).permute(0, 3, 1, 2).float() / 255 for maps in control_maps]  # (F, 3, H, W)
    scales = [float(scale) for scale in config.control_scales]
    several = len(frames) > 1
    return {
        "conditioning_frames": frames if several else frames[0],
        "controlnet_conditioning_scale": scales if several else scales[0],
        "control_guidance_start": config.control_guidance_start,
        "control_guidance_end": config.control_guidance_end,
    }


def render_edits(
    pipe: TuneAVideoPipeline,
    video_latents: torch.Tensor,
    config: InferenceConfig,
    inversion_cache: str | Path | None = None,
    control_maps: list[np.ndarray] = (),
    blend: LatentBlend | None = None,
) -> list[np.ndarray]:
    """Edit the clip whose latents are ``video_latents`` (1, 4, F, h, w) once per prompt of ``config``.

    ``video_latents`` come from ``pipe.encode_video`` (scaled). ``config.inversion``: start from the
    DDIM-inverted clip (``config.inversion_steps``), else from noise drawn with ``config.seed``.
    ``inversion_cache``: optional file for the inverted latents (see :func:`invert_clip`).
    ``control_maps``: one (F, H, W, 3) uint8 map video per ControlNet of ``pipe``; the inversion runs
    without them. ``blend``: a region edit's latent blending (:mod:`vidsynth.regions.blend`); the sampling
    starts from the end of its inversion trajectory. Returns one video per prompt, (F, H, W, 3) uint8.
    """
    if video_latents.ndim != 5 or video_latents.shape[0] != 1:
        raise VidSynthError(
            f"render_edits edits one clip: video_latents must be (1, 4, frames, h, w), got "
            f"{tuple(video_latents.shape)}. Encode a single clip with pipe.encode_video"
        )
    _, _, num_frames, height, width = video_latents.shape
    control = control_arguments(config, list(control_maps))
    start = None
    if blend is not None:
        start = blend.trajectory[-1]
    elif config.inversion:
        start = invert_clip(pipe, video_latents, config, inversion_cache)  # (1, 4, F, h, w)
    videos = []
    for prompt in events.steps(config.prompts, "prompts"):
        generator = torch.Generator("cpu").manual_seed(config.seed)  # CPU: the same noise on every device
        output = pipe(
            prompt,
            num_frames=num_frames,
            height=height * pipe.vae_scale_factor,
            width=width * pipe.vae_scale_factor,
            num_inference_steps=config.num_inference_steps,
            guidance_scale=config.guidance_scale,
            negative_prompt=config.negative_prompt,
            latents=start,
            generator=generator,
            output_type="latent",
            window=config.window,
            window_overlap=config.window_overlap,
            callback_on_step_end=blend,
            **control,
        )
        videos.append(pipe.decode_video(output.videos, VAE_CHUNK))  # (F, H, W, 3) uint8
    return videos


def video_pipeline(
    request: EditRequest, controlnet: ControlNetModel | MultiControlNetModel | None = None
) -> TuneAVideoPipeline:
    """The request's video pipeline: its model, LoRAs scaled and fused, the VAE's slicing as asked."""
    pipe = load_pipeline(request.model, request.dtype, request.device, controlnet=controlnet)
    apply_loras(pipe, request.config.lora_scale, list(request.loras))  # scaled and fused before sampling
    if not request.config.vae_slicing:
        pipe.vae.disable_slicing()
    return pipe


def edit_tuneavideo(
    request: EditRequest,
    clip: Clip,
    pipe: TuneAVideoPipeline | None = None,
    video_latents: torch.Tensor | None = None,
    control_maps: list[np.ndarray] = (),
    controlnet: ControlNetModel | MultiControlNetModel | None = None,
) -> list[np.ndarray]:
    """The main method: video pipeline, DDIM inversion (cached) and sampling; one (F, H, W, 3) uint8 video per prompt.

    ``pipe``: an already built pipeline (validation passes the one around the UNet being tuned);
    ``video_latents``: the clip's latents when already encoded. ``controlnet`` and ``control_maps``:
    structure guidance (``vidsynth.control``), for a pipeline built here.
    """
    if pipe is None:
        pipe = video_pipeline(request, controlnet)
    elif not request.config.vae_slicing:
        pipe.vae.disable_slicing()
    if video_latents is None:
        video_latents = encode_clip(pipe, clip)  # (1, 4, F, h, w)
    return render_edits(pipe, video_latents, request.config, request.inversion_cache, control_maps)


def edit_img2img(
    request: EditRequest,
    clip: Clip,
    control_maps: list[np.ndarray] = (),
    controlnet: ControlNetModel | MultiControlNetModel | None = None,
) -> list[np.ndarray]:
    """The baseline: SD img2img on every frame at the same steps, guidance, seed and controls; a video per prompt."""
    config = request.config
    pipe = load_img2img_pipeline(request.img2img_base, request.device, request.dtype, controlnet)
    if not config.vae_slicing:
        pipe.vae.disable_slicing()
    return render_img2img(
        pipe,
        clip.pixels,
        config.prompts,
        strength=config.strength,
        num_inference_steps=config.num_inference_steps,
        guidance_scale=config.guidance_scale,
        negative_prompt=config.negative_prompt,
        seed=config.seed,
        batch_size=config.batch_size,
        control=control_arguments(config, list(control_maps)) or None,
    )
