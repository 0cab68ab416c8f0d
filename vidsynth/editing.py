"""Rendering edits of one clip: what ``inference.py`` and the tuning run's validation step share.

An edit is the clip's latents DDIM-inverted once (or, without inversion, seeded noise) and then
sampled with each new prompt. Every prompt starts from the same latents and from a generator seeded
with the same seed, so an edit does not depend on which other prompts were rendered with it, and
re-running one prompt with the seed of its sidecar gives the same video.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vidsynth.errors import VidSynthError
from vidsynth.media import atomic_path
from vidsynth.pipelines import TuneAVideoPipeline

logger = logging.getLogger(__name__)


def source_video(pixels: torch.Tensor) -> np.ndarray:
    """Clip pixels (F, 3, H, W) in [-1, 1] -> (3, F, H, W) float32 in [0, 1], laid out like an edit."""
    return ((pixels.float().permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1).cpu().numpy()


def invert_clip(
    pipe: TuneAVideoPipeline,
    video_latents: torch.Tensor,
    num_inference_steps: int,
    cache_path: str | Path | None = None,
) -> torch.Tensor:
    """``pipe.invert(video_latents)`` (prompt ""), read from / written to ``cache_path`` when given.

    The caller keys the cache file on everything the result depends on (model, clip, size, steps,
    dtype); a cache file that cannot be read or does not fit is ignored and rewritten.
    """
    cache_path = Path(cache_path) if cache_path is not None else None
    if cache_path is not None and cache_path.is_file():
        try:
            cached = torch.load(cache_path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file raises one of several types; it is only a cache
            logger.warning("Ignoring unreadable inversion cache %s (%s)", cache_path, err)
        else:
            if isinstance(cached, torch.Tensor) and cached.shape == video_latents.shape:
                logger.info("DDIM inversion read from cache %s", cache_path)
                return cached
            logger.warning("Ignoring inversion cache %s: it does not fit this clip", cache_path)
    inverted = pipe.invert(video_latents, num_inference_steps=num_inference_steps)  # (b, 4, F, h, w)
    if cache_path is not None:
        with atomic_path(cache_path) as tmp:
            torch.save(inverted.cpu(), tmp)
        logger.info("DDIM inversion cached in %s", cache_path)
    return inverted


def render_edits(
    pipe: TuneAVideoPipeline,
    video_latents: torch.Tensor,
    prompts: Sequence[str],
    *,
    num_inference_steps: int = 50,
    guidance_scale: float = 12.5,
    negative_prompt: str | None = None,
    inversion_steps: int | None = 50,
    seed: int = 33,
    inversion_cache: str | Path | None = None,
) -> list[np.ndarray]:
    """Edit the clip whose latents are ``video_latents`` (1, 4, F, h, w) once per prompt.

    ``video_latents`` come from ``pipe.encode_video`` (scaled). ``inversion_steps``: DDIM inversion
    steps for the shared starting latents; None starts every prompt from noise drawn with ``seed``
    instead. ``inversion_cache``: optional file for the inverted latents (see :func:`invert_clip`).
    Returns one video per prompt, (3, F, H, W) float32 in [0, 1].
    """
    prompts = list(prompts)
    if not prompts:
        raise VidSynthError("no prompts to render. Give at least one prompt describing the edit")
    if video_latents.ndim != 5 or video_latents.shape[0] != 1:
        raise VidSynthError(
            f"render_edits edits one clip: video_latents must be (1, 4, frames, h, w), got "
            f"{tuple(video_latents.shape)}. Encode a single clip with pipe.encode_video"
        )
    _, _, frames, height, width = video_latents.shape
    start = None
    if inversion_steps is not None:
        start = invert_clip(pipe, video_latents, inversion_steps, inversion_cache)  # (1, 4, F, h, w)
    videos = []
    for prompt in prompts:
        generator = torch.Generator("cpu").manual_seed(seed)  # CPU: the same noise on every device
        output = pipe(
            prompt,
            video_length=frames,
            height=height * pipe.vae_scale_factor,
            width=width * pipe.vae_scale_factor,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            negative_prompt=negative_prompt,
            latents=start,
            generator=generator,
            output_type="np",
        )
        videos.append(output.videos[0])  # (3, F, H, W)
    return videos
