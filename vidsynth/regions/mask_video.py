"""A mask video: the region drawn elsewhere, one black-and-white frame per edited frame, at any size.

Frame i is the mask of the edit's frame i; it is resized (stretched) to the edit's size the way the
clip is, and a pixel belongs to the region where its brightness is at least half (so a compressed
video's soft edges and noise do not matter).
"""

import numpy as np
import torch

from vidsynth.media.video import read_frames


def read_mask_video(path: str, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The masks of the edit's ``num_frames`` frames: (F, height, width) float32, 1 in the region, 0 elsewhere.

    The file's frame count was checked when the region was resolved (:func:`vidsynth.config.region.resolve_region`).
    """
    frames = read_frames(path, range(num_frames), width, height)  # (F, H, W, 3) uint8
    brightness = frames.astype(np.float32).mean(axis=-1) / 255
    return torch.from_numpy((brightness >= 0.5).astype(np.float32))
