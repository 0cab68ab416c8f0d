"""One edit from start to finish, once its request is resolved: read, guide, render, write.

The span is decoded once; the controls' maps are made from those very frames and their ControlNets
loaded once, for every method; each method asked for renders every prompt
(:mod:`vidsynth.editing.render`); the results are written together, so the output folder appears
only when all of them are complete (:mod:`vidsynth.editing.outputs`).
"""

import logging

from vidsynth.control import control_maps, load_controlnets
from vidsynth.editing.outputs import write_results
from vidsynth.editing.render import edit_img2img, edit_tuneavideo
from vidsynth.editing.request import EditRequest

logger = logging.getLogger(__name__)


def run_edit(request: EditRequest) -> list[str]:
    """Edit ``request.clip`` with each prompt by each of ``request.methods``; the names written in ``request.out``."""
    logger.info("%s", request.describe())
    clip = request.clip.read()
    maps = control_maps(request.controls, clip, request.device, request.dtype)  # one (F, H, W, 3) per control
    controlnet = load_controlnets(request.controls, request.dtype, request.device)  # None without controls
    edits = {}
    if "img2img" in request.methods:
        edits["img2img"] = (request.img2img_base, edit_img2img(request, clip, maps, controlnet))
    if "tuneavideo" in request.methods:
        edits["tuneavideo"] = (
            request.model.name,
            edit_tuneavideo(request, clip, control_maps=maps, controlnet=controlnet),
        )
    return write_results(request, clip, edits, maps)
