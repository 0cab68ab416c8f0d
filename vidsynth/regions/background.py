"""The new background of a background replacement, frame by frame.

``--background`` names it: an image (stretched to the frame), a video (its frames in order, from its
start, looped if shorter than the edit, stretched), a colour ``#RRGGBB``, or ``blur`` (the clip's own
frames blurred, a portrait-mode look). The region's subject is put over it by
:func:`vidsynth.regions.blend.subject_over`.
"""

from pathlib import Path

import cv2
import numpy as np

from vidsynth.media.still import read_still
from vidsynth.media.video import VIDEO_SUFFIXES, probe_video, read_frames

BLUR_FRACTION = 0.03  # --background blur: the Gaussian's sigma as a fraction of the frame's longer side


def background_frames(background: str, frames: np.ndarray) -> np.ndarray:
    """The new background for ``frames`` ((F, H, W, 3) uint8): (F, H, W, 3) uint8."""
    num_frames, height, width = frames.shape[:3]
    if background == "blur":
        sigma = BLUR_FRACTION * max(height, width)
        return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames])
    if background.startswith("#"):
        colour = np.frombuffer(bytes.fromhex(background[1:]), np.uint8)
        return np.broadcast_to(colour, frames.shape).copy()
    if Path(background).suffix.lower() in VIDEO_SUFFIXES:
        total = probe_video(background).num_frames
        return read_frames(background, [i % total for i in range(num_frames)], width, height)
    still = np.asarray(read_still(background).resize((width, height)))
    return np.broadcast_to(still, frames.shape).copy()
