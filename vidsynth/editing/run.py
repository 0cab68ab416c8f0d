"""One edit from start to finish, once its request is resolved: read, guide, render, write.

The span is decoded once; the controls' maps are made from those very frames and their ControlNets
loaded once, for every method; each method asked for renders every prompt
(:mod:`vidsynth.editing.render`; with a region, :mod:`vidsynth.editing.region`); the results are
written together, so the output folder appears only when all of them are complete
(:mod:`vidsynth.editing.outputs`).
"""

import logging

from vidsynth.control import control_maps, load_controlnets
from vidsynth.editing.outputs import write_results
from vidsynth.editing.region import edit_region, keep_source_around, masks_of, new_background
from vidsynth.editing.render import edit_img2img, edit_tuneavideo
from vidsynth.editing.request import EditRequest

logger = logging.getLogger(__name__)


def run_edit(request: EditRequest) -> list[str]:
    """Edit ``request.clip`` with each prompt by each of ``request.methods``; the names written in ``request.out``."""
    logger.info("%s", request.describe())
    clip = request.clip.read()
    maps = control_maps(request.controls, clip, request.device, request.dtype)  # one (F, H, W, 3) per control
    controlnet = load_controlnets(request.controls, request.dtype, request.device)  # None without controls
    region, masks, tuned = request.region, None, None
    if region is not None and region.background is not None:
        tuned, masks = new_background(request, clip, maps, controlnet)
    elif "tuneavideo" in request.methods:  # first: a word's masks come from its inversion
        if region is not None:
            tuned, masks = edit_region(request, clip, maps, controlnet)
        else:
            tuned = edit_tuneavideo(request, clip, control_maps=maps, controlnet=controlnet)
    edits = {}
    if "img2img" in request.methods:  # never with a new background (refused when resolved)
        baseline = edit_img2img(request, clip, maps, controlnet)
        if region is not None:
            masks = masks if masks is not None else masks_of(request, clip)
            baseline = keep_source_around(request, clip, baseline, masks)
        edits["img2img"] = (request.img2img_base, baseline)
    if tuned is not None:
        edits["tuneavideo"] = (request.model.name, tuned)
    return write_results(request, clip, edits, maps, masks)
