"""Canny edge maps, the input of the canny ControlNet: OpenCV on each frame, no model weights."""

import cv2
import numpy as np


def canny_maps(frames: np.ndarray, low_threshold: int, high_threshold: int) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 RGB -> edge maps (F, H, W, 3) uint8, 255 on edges, 0 elsewhere.

    ``cv2.Canny`` runs on the RGB frame as the ControlNet annotator does (its gradient is the
    strongest channel's); the one-channel map is repeated to the three channels the ControlNet takes.
    """
    edges = np.stack([cv2.Canny(frame, low_threshold, high_threshold) for frame in frames])  # (F, H, W)
    return np.repeat(edges[..., None], 3, axis=-1)
