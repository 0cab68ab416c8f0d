"""An edit's masks from where its region comes from, cached: one (F, H, W) {0, 1} mask per edited frame.

The one place that knows the three sources: a word's cross-attention (:mod:`vidsynth.regions.word`,
from the clip's inversion), a segmentation model (:mod:`vidsynth.regions.segment`) or a mask video
(:mod:`vidsynth.regions.mask_video`). A word's and a model's masks are grown by ``dilate`` pixels (a disc,
:func:`dilate`). Masks that took a model are cached in the file the region names (keyed on the span and
every region setting), so a second edit of the same region, with other prompts or another background, runs
no model for them.
"""

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from vidsynth.atomic import atomic_path
from vidsynth.config.region import RegionSpec
from vidsynth.regions.mask_video import read_mask_video

logger = logging.getLogger(__name__)


def _cached(path: Path | None, shape: tuple[int, int, int]) -> torch.Tensor | None:
    if path is None or not path.is_file():
        return None
    try:
        masks = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file raises one of several types; it is only a cache
        logger.warning("Ignoring unreadable mask cache %s (%s)", path, err)
        return None
    return masks if isinstance(masks, torch.Tensor) and tuple(masks.shape) == shape else None


def dilate(masks: np.ndarray, pixels: int) -> np.ndarray:
    """(F, H, W) {0, 1} grown by ``pixels`` (a disc), as float32."""
    if pixels <= 0:
        return masks.astype(np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), disc) for m in masks]).astype(np.float32)


def region_masks(
    region: RegionSpec,
    frames: np.ndarray,
    *,
    device: torch.device,
    dtype: torch.dtype,
    pipe=None,
    trajectory: list[torch.Tensor] | None = None,
    window: int | None = None,
    window_overlap: int = 0,
) -> torch.Tensor:
    """The region's masks for ``frames`` ((F, H, W, 3) uint8, the edit's): (F, H, W) float32, 1 in the region.

    A word's masks need the video ``pipe`` and the clip's inversion ``trajectory`` (x0 first); the UNet
    then runs in ``window``s as the edit does.
    """
    num_frames, height, width = frames.shape[:3]
    cached = _cached(region.cache, (num_frames, height, width))
    if cached is not None:
        logger.info("Region masks read from cache %s", region.cache)
        return cached
    if region.source == "mask-video":
        return read_mask_video(region.mask_video, num_frames, height, width)
    if region.source == "segment":
        from vidsynth.regions.segment import segment_masks  # the segmentation models' code loads only when asked

        region_only = segment_masks(
            frames,
            text=region.text,
            point=region.point,
            box=region.box,
            model=region.segment_model,
            text_model=region.segment_text_model,
            device=device,
            dtype=dtype,
            threshold=region.threshold,
        )
    else:
        from vidsynth.regions.word import word_masks

        if pipe is None or trajectory is None:
            raise ValueError("a word's masks need the video pipeline and the clip's inversion trajectory")
        region_only = word_masks(
            pipe,
            trajectory,
            region.word_prompt,
            region.text,
            height=height,
            width=width,
            threshold=region.threshold,
            window=window,
            window_overlap=window_overlap,
        )
    masks = torch.from_numpy(dilate(region_only.numpy(), region.dilate))
    with atomic_path(region.cache) as tmp:
        torch.save(masks.cpu(), tmp)
    return masks
