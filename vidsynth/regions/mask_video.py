"""A mask video: the region drawn elsewhere, one black-and-white frame per edited frame, at any size.

Frame i is the mask of the edit's frame i; it is resized (stretched) to the edit's size the way the
clip is, and a pixel belongs to the region where its brightness is at least half (so a compressed
video's soft edges and noise do not matter).
"""

import numpy as np
import torch

from vidsynth.errors import VidSynthError
from vidsynth.media.video import probe_video, read_frames


def read_mask_video(path: str, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The masks of the edit's ``num_frames`` frames: (F, height, width) float32, 1 in the region, 0 elsewhere."""
    info = probe_video(path)
    if info.num_frames != num_frames:
        raise VidSynthError(
            f"mask video {info.path} has {info.num_frames} frames, the edit {num_frames}. Give one mask frame per "
            "edited frame"
        )
    frames = read_frames(info.path, range(num_frames), width, height)  # (F, H, W, 3) uint8
    brightness = frames.astype(np.float32).mean(axis=-1) / 255
    return torch.from_numpy((brightness >= 0.5).astype(np.float32))
