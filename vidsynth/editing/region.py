"""Region edits of one resolved request: the masks, the blended sampling, the compositing, new backgrounds.

With a region (``request.region``) the video model's edit keeps the source outside it: the clip is
inverted once with every step kept (cached next to the plain inversion), the masks come from the
region's source (:mod:`vidsynth.regions.masks`, cached too), each prompt is sampled with the source's
latents put back outside the region at every step (:mod:`vidsynth.regions.blend`), and the decoded
frames are composited over the source. The img2img baseline (``--compare``) gets the compositing only.

``--background`` keeps the region's subject over a new background (:mod:`vidsynth.regions.background`)
and renders no prompt: every prompt's video is that composite, unless ``--harmonize S``: then the video
model edits the composite outside the subject with the prompt (as ``--edit-outside`` would), and
that edit is mixed into the background at strength S, a light pass that carries the prompt's light and
colour into the new background while the subject stays exactly as it was.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth.atomic import atomic_path
from vidsynth.editing.render import encode_clip, render_edits, video_pipeline
from vidsynth.editing.request import EditRequest
from vidsynth.media.video import Clip
from vidsynth.media.writers import to_uint8
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.regions.background import replace_background
from vidsynth.regions.blend import LatentBlend, composite, feathered, keep_source, latent_mask
from vidsynth.regions.masks import region_masks

logger = logging.getLogger(__name__)

Controlnet = ControlNetModel | MultiControlNetModel | None


def invert_steps(pipe: TuneAVideoPipeline, latents: torch.Tensor, request: EditRequest, cache: Path | None):
    """The clip's inversion trajectory (x0 first), every step kept; cached in ``<inversion cache>-steps.pt``."""
    config = request.config
    path = cache.with_name(f"{cache.stem}-steps.pt") if cache is not None else None
    if path is not None and path.is_file():
        try:
            stacked = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file raises one of several types; it is only a cache
            logger.warning("Ignoring unreadable inversion cache %s (%s)", path, err)
        else:
            if tuple(stacked.shape) == (config.inversion_steps + 1, *latents.shape):
                logger.info("DDIM inversion read from cache %s", path)
                return [step.to(latents.device, latents.dtype) for step in stacked]
    trajectory = pipe.invert(
        latents,
        num_inference_steps=config.inversion_steps,
        return_all=True,
        window=config.window,
        window_overlap=config.window_overlap,
    )
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(torch.stack(trajectory).cpu(), tmp)
    return trajectory


def _masks(request: EditRequest, clip: Clip, pipe=None, trajectory=None) -> torch.Tensor:
    config = request.config
    return region_masks(
        request.region,
        clip.frames,
        device=request.device,
        dtype=request.dtype,
        pipe=pipe,
        trajectory=trajectory,
        window=config.window,
        window_overlap=config.window_overlap,
    )


def edit_region(
    request: EditRequest, clip: Clip, control_maps: list[np.ndarray] = (), controlnet: Controlnet = None
) -> tuple[list[np.ndarray], torch.Tensor]:
    """The video model's edit inside (or outside) the region: one (F, H, W, 3) uint8 video per prompt, and the masks."""
    region, config = request.region, request.config
    pipe = video_pipeline(request, controlnet)
    latents = encode_clip(pipe, clip)  # (1, 4, F, h, w)
    trajectory = invert_steps(pipe, latents, request, request.inversion_cache)
    masks = _masks(request, clip, pipe, trajectory)  # (F, H, W)
    blend = LatentBlend(trajectory, latent_mask(masks, region.edit, region.feather, tuple(latents.shape[-2:])))
    videos = render_edits(pipe, latents, config, control_maps=control_maps, blend=blend)
    return [keep_source(video, clip.frames, masks, region.edit, region.feather) for video in videos], masks


def masks_of(request: EditRequest, clip: Clip) -> torch.Tensor:
    """The region's masks without an edit (a word's need the video model's inversion of the clip)."""
    if request.region.source != "word":
        return _masks(request, clip)
    pipe = video_pipeline(request)
    latents = encode_clip(pipe, clip)
    return _masks(request, clip, pipe, invert_steps(pipe, latents, request, request.inversion_cache))


def keep_source_around(request: EditRequest, clip: Clip, videos: list[np.ndarray], masks: torch.Tensor) -> list:
    """A baseline's videos ((3, F, H, W) in [0, 1] or uint8 frames) composited over the source by the region: pixels
    only, it has no latents to blend. (F, H, W, 3) uint8 each."""
    region = request.region
    return [keep_source(to_uint8(video), clip.frames, masks, region.edit, region.feather) for video in videos]


def new_background(
    request: EditRequest, clip: Clip, control_maps: list[np.ndarray] = (), controlnet: Controlnet = None
) -> tuple[list[np.ndarray], torch.Tensor]:
    """``--background``: per prompt the subject over the new background (harmonized if asked), and the masks."""
    region = request.region
    masks = masks_of(request, clip)
    frames = replace_background(clip.frames, masks, region.background, region.feather)
    if not region.harmonize:
        return [frames] * len(request.config.prompts), masks
    pipe = video_pipeline(request, controlnet)
    latents = encode_clip(pipe, dataclasses.replace(clip, frames=frames))
    trajectory = invert_steps(pipe, latents, request, None)  # the composite is a new clip: not cached
    blend = LatentBlend(trajectory, latent_mask(masks, "outside", region.feather, tuple(latents.shape[-2:])))
    edits = render_edits(pipe, latents, request.config, control_maps=control_maps, blend=blend)
    edits = [keep_source(edit, frames, masks, "outside", region.feather) for edit in edits]  # the subject exact
    # The composite's weight: 1 on the subject, 1 - S on the new background (S of the edit mixed in there).
    weight = 1 - region.harmonize * (1 - feathered(masks.numpy(), region.feather))
    return [composite(frames, edit, weight) for edit in edits], masks
