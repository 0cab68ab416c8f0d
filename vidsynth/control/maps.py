"""The controls' maps for the edited frames, made once and cached like the inversion.

Maps are made from the very frames that are edited (the :class:`~vidsynth.media.video.Clip`: same span,
stride and size), kept as uint8 (F, H, W, 3) like the frames themselves, and written to the cache
file the request names (keyed by kind, thresholds or depth model, clip, span and size), so a second
edit of the same clip with new prompts makes none again. A control video is read, not cached.
"""

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vidsynth.atomic import atomic_path
from vidsynth.control.canny import canny_maps
from vidsynth.control.control_video import read_control_video
from vidsynth.control.depth import depth_maps, load_depth_estimator
from vidsynth.control.spec import ControlSpec
from vidsynth.media.video import Clip

logger = logging.getLogger(__name__)


def control_maps(
    controls: tuple[ControlSpec, ...], clip: Clip, device: torch.device, dtype: torch.dtype
) -> list[np.ndarray]:
    """One map video (F, H, W, 3) uint8 per control, in order. ``device``/``dtype``: where the depth model runs."""
    maps = []
    for spec in controls:
        if spec.kind == "video":
            maps.append(read_control_video(spec.source, clip.frame_indices, clip.width, clip.height))
        else:
            maps.append(_cached(spec, clip, lambda spec=spec: _extract(spec, clip, device, dtype)))
    return maps


def _extract(spec: ControlSpec, clip: Clip, device: torch.device, dtype: torch.dtype) -> np.ndarray:
    if spec.kind == "canny":
        return canny_maps(clip.frames, *spec.thresholds)
    logger.info("Estimating depth with %s", spec.source)
    return depth_maps(clip.frames, *load_depth_estimator(spec.source, device, dtype))


def _cached(spec: ControlSpec, clip: Clip, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()``, read from ``spec.cache`` when it holds maps of this clip's shape, else written there."""
    path = Path(spec.cache) if spec.cache is not None else None
    if path is not None and path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:  # a damaged file; it is only a cache
            logger.warning("Ignoring unreadable control map cache %s (%s)", path, err)
        else:
            if cached.dtype == np.uint8 and cached.shape == clip.frames.shape:
                logger.info("%s maps read from cache %s", spec.label, path)
                return cached
            logger.warning("Ignoring control map cache %s: it does not fit this clip", path)
    maps = make()
    if path is not None:
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            np.save(file, maps)
    return maps
