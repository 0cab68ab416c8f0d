"""A control video: ControlNet maps made elsewhere (e.g. pose renders), frame for frame with the source clip.

Its frame i is the map of the clip's frame i, so it is read at the edited frames' indices and resized
to the edited size exactly as the clip is. A video that ends before the span does, or whose shape
differs from the clip's (its maps would not line up), is refused with the fix before any model loads.
"""

from pathlib import Path

import numpy as np

from vidsynth.errors import VidSynthError
from vidsynth.media.video import VideoInfo, probe_video, read_frames

ASPECT_TOLERANCE = 0.01  # relative: a render of the clip at another resolution keeps its aspect ratio


def check_control_video(path: str, clip: VideoInfo, frame_indices: range) -> str:
    """The control video's absolute path, once it is known to cover ``frame_indices`` of ``clip`` and line up."""
    info = probe_video(path)
    name, clip_name = Path(info.path).name, Path(clip.path).name
    last = frame_indices[-1]
    if info.num_frames <= last:
        raise VidSynthError(
            f"control video {name} has {info.num_frames} frames, fewer than the span needs: the edit uses frames "
            f"{frame_indices[0]} to {last} of {clip_name} (stride {frame_indices.step}), and a control video has one "
            f"frame per frame of the clip. Render it from the whole clip, frame for frame, or shorten the span "
            f"(--frames, --end)"
        )
    aspect, clip_aspect = info.width / info.height, clip.width / clip.height
    if abs(aspect - clip_aspect) > ASPECT_TOLERANCE * clip_aspect:
        raise VidSynthError(
            f"control video {name} is {info.width}x{info.height}, but {clip_name} is {clip.width}x{clip.height}: its "
            f"maps would not line up with the frames. Render it at {clip.width}x{clip.height} (or another size of "
            "the same aspect ratio; it is resized like the clip)"
        )
    return info.path


def read_control_video(path: str, frame_indices: tuple[int, ...], width: int, height: int) -> np.ndarray:
    """The maps of the edited frames: (F, height, width, 3) uint8, resized as the clip's frames are."""
    return read_frames(path, frame_indices, width, height)
