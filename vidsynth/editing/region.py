"""A region edit made ready to render: its masks made once, the frames it starts from, their blending.

With a region (``request.region``) the video model's edit keeps the source outside it: the clip is
inverted once with every step kept (cached next to the plain inversion), the masks come from the
region's source (:mod:`vidsynth.regions.masks`, cached too; a word's from that inversion, the others' before
it), each prompt is sampled with the source's latents put back outside the region at every step (the
:class:`~vidsynth.regions.blend.LatentBlend` made here, which :func:`vidsynth.editing.render.render_edits`
takes), and the decoded frames are composited over the source (:meth:`PreparedRegion.composite`). The
img2img baseline (``--compare``) gets the compositing only.

``--background`` keeps the region's subject over a new background (:mod:`vidsynth.regions.background`)
and renders no prompt: every prompt's video is that composite, unless ``--harmonize S``: then the video
model edits the composite outside the subject with the prompt (as ``--edit-outside`` would), and
that edit is mixed into the background at strength S, a light pass that carries the prompt's light and
colour into the new background while the subject stays exactly as it was.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth.config.region import RegionSpec
from vidsynth.editing.render import encode_clip, invert_clip, video_pipeline
from vidsynth.editing.request import EditRequest
from vidsynth.media.video import Clip
from vidsynth.media.writers import to_uint8
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.regions.background import background_frames
from vidsynth.regions.blend import LatentBlend, keep_source, latent_mask, subject_over
from vidsynth.regions.masks import region_masks


@dataclass(frozen=True)
class PreparedRegion:
    """The region's masks (F, H, W) {0, 1}, the frames the edit starts from (the clip's, or the subject over the
    new background) and where the edit acts: what each method's videos are composited with."""

    spec: RegionSpec
    masks: torch.Tensor
    frames: np.ndarray
    edit: str  # inside | outside

    def composite(self, videos: list) -> list[np.ndarray]:
        """Each edited video ((F, H, W, 3) uint8 or (3, F, H, W) in [0, 1]) where the edit acts, the source's frames
        elsewhere; over a new background with ``--harmonize S``, S of that mixed into the background."""
        spec = self.spec
        harmonize = spec.harmonize if spec.background is not None else 0.0
        return [
            keep_source(to_uint8(video), self.frames, self.masks, self.edit, spec.feather, harmonize)
            for video in videos
        ]


@dataclass(frozen=True)
class BlendedStart:
    """What the video model renders a region edit from: its pipeline, the frames' latents, the latent blending."""

    pipe: TuneAVideoPipeline
    latents: torch.Tensor  # (1, 4, F, h, w)
    blend: LatentBlend


def prepare_region(
    request: EditRequest, clip: Clip, controlnet: ControlNetModel | MultiControlNetModel | None = None
) -> tuple[PreparedRegion, BlendedStart | None]:
    """The masks, once, and what the video model renders the region edit from (None when it renders nothing: the
    img2img baseline alone, or a new background without a harmonizing edit)."""
    spec, config = request.region, request.config
    renders = "tuneavideo" in request.methods and (spec.background is None or spec.harmonize > 0)

    def masks_from(pipe=None, trajectory=None) -> torch.Tensor:  # (F, H, W)
        kwargs = {"window": config.window, "window_overlap": config.window_overlap}
        return region_masks(
            spec, clip.frames, device=request.device, dtype=request.dtype, pipe=pipe, trajectory=trajectory, **kwargs
        )

    # A segmentation's or a mask video's masks first: a text that matches nothing fails before the slow work (and
    # leaves no inversion cache). Only a word's need the video model's inversion.
    masks = None if spec.source == "word" else masks_from()
    pipe = video_pipeline(request, controlnet) if renders or spec.source == "word" else None
    latents = trajectory = None
    if pipe is not None and (spec.background is None or spec.source == "word"):  # the clip's own inversion
        latents = encode_clip(pipe, clip)  # (1, 4, F, h, w)
        trajectory = invert_clip(pipe, latents, config, request.inversion_cache, every_step=True)
    if masks is None:
        masks = masks_from(pipe, trajectory)
    if spec.background is None:
        frames, edit = clip.frames, spec.edit
    else:
        background = background_frames(spec.background, clip.frames)
        frames, edit = subject_over(clip.frames, background, masks, spec.feather), "outside"
        if renders:  # --harmonize: the composite is a new clip, inverted (not cached)
            latents = encode_clip(pipe, dataclasses.replace(clip, frames=frames))
            trajectory = invert_clip(pipe, latents, config, every_step=True)
    start = None
    if renders:
        blend = LatentBlend(trajectory, latent_mask(masks, edit, spec.feather, tuple(latents.shape[-2:])))
        start = BlendedStart(pipe, latents, blend)
    return PreparedRegion(spec, masks, frames, edit), start
