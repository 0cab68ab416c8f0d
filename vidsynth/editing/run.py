"""One edit from start to finish, once its request is resolved: read, guide, render, composite, write.

The span is decoded once; the controls' maps are made from those very frames and their ControlNets
loaded once, for every method. With a region its masks are made once, first
(:mod:`vidsynth.editing.region`); each method asked for then renders every prompt
(:mod:`vidsynth.editing.render`; the video model with the region's latent blending), each video is
composited over the source once, and the results are written together, so the output folder appears
only when all of them are complete (:mod:`vidsynth.editing.outputs`).
"""

import logging

import numpy as np
import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth.control import control_maps, load_controlnets
from vidsynth.editing.outputs import write_results
from vidsynth.editing.region import prepare_region
from vidsynth.editing.render import edit_img2img, edit_tuneavideo, render_edits
from vidsynth.editing.request import EditRequest
from vidsynth.media.video import Clip

logger = logging.getLogger(__name__)


def run_edit(request: EditRequest) -> list[str]:
    """Edit ``request.clip`` with each prompt by each of ``request.methods``; the names written in ``request.out``."""
    logger.info("%s", request.describe())
    clip = request.clip.read()
    maps = control_maps(request.controls, clip, request.device, request.dtype)  # one (F, H, W, 3) per control
    controlnet = load_controlnets(request.controls, request.dtype, request.device)  # None without controls
    videos, masks = edit_videos(request, clip, maps, controlnet)
    models = {"img2img": request.img2img_base, "tuneavideo": request.model.name}
    edits = {method: (models[method], videos[method]) for method in request.methods}
    return write_results(request, clip, edits, maps, masks)


def edit_videos(
    request: EditRequest,
    clip: Clip,
    maps: list[np.ndarray] = (),
    controlnet: ControlNetModel | MultiControlNetModel | None = None,
) -> tuple[dict[str, list[np.ndarray]], torch.Tensor | None]:
    """Per method, one (F, H, W, 3) uint8 video per prompt; and the region's masks (None without a region).

    The region's masks come first (a word's from the video model's inversion of the clip), then the
    renders (the video model's with the region's latent blending), then one composite per video.
    """
    region, start = prepare_region(request, clip, controlnet) if request.region is not None else (None, None)
    videos = {}
    if "tuneavideo" in request.methods:  # first, as a word's masks came from its inversion
        if region is None:
            videos["tuneavideo"] = edit_tuneavideo(request, clip, control_maps=maps, controlnet=controlnet)
        elif start is None:  # a new background, no harmonizing edit: the composite is the result
            videos["tuneavideo"] = [region.frames] * len(request.config.prompts)
        else:
            edits = render_edits(start.pipe, start.latents, request.config, control_maps=maps, blend=start.blend)
            videos["tuneavideo"] = region.composite(edits)
            start = None  # the video model is let go before the baseline's loads
    if "img2img" in request.methods:  # never with a new background (refused when resolved)
        baseline = edit_img2img(request, clip, maps, controlnet)
        videos["img2img"] = baseline if region is None else region.composite(baseline)
    return videos, None if region is None else region.masks
