"""The frame size and the segments of an animation: plain arithmetic, decided before any model loads.

A model makes a fixed number of frames at once (14 for SVD, 25 for SVD-XT). A longer result is made
in segments: the first starts from the still, each next one from the previous segment's last frame.
That frame comes back as the next segment's first frame, so it is dropped there: each segment after
the first adds ``model frames - 1`` new frames, and the last is cut so the result has exactly the
frames asked for.
"""

import math
from dataclasses import dataclass

from vidsynth.errors import VidSynthError


@dataclass(frozen=True)
class Segment:
    """Output frames ``start:stop`` come from one run of the model, drawn with ``seed``."""

    start: int
    stop: int
    seed: int
    num_frames: int  # frames the model makes for it (its first one is the previous segment's last, after the first)


def frame_size(
    image_size: tuple[int, int], native_long_side: int, multiple: int, width: int | None, height: int | None
) -> tuple[int, int]:
    """(width, height): as given, else the image's aspect ratio with the native long side, in ``multiple``s.

    One side given: the other from the aspect ratio. Given sides must be multiples of ``multiple``.
    """
    for key, value in (("width", width), ("height", height)):
        if value is not None and value % multiple:
            low = max(multiple, value // multiple * multiple)
            raise VidSynthError(
                f"{key} {value} is not accepted by the model: it must be a multiple of {multiple}. "
                f"Use {low} or {low + multiple}"
            )
    image_w, image_h = image_size
    if width is None and height is None:
        scale = native_long_side / max(image_w, image_h)
        width, height = image_w * scale, image_h * scale
    elif width is None:
        width = height * image_w / image_h
    elif height is None:
        height = width * image_h / image_w
    return tuple(max(multiple, math.floor(side / multiple + 0.5) * multiple) for side in (width, height))  # half up


def segments(total: int, model_frames: int, seed: int) -> list[Segment]:
    """The segments that make ``total`` frames, ``model_frames`` at a time, segment k drawn with ``seed + k``."""
    if total < 1:
        raise VidSynthError(f"an animation needs at least 1 frame, got {total}. Ask for more frames or seconds")
    if total <= model_frames:
        return [Segment(0, total, seed, total)]
    if model_frames < 2:
        raise VidSynthError(f"a model that makes {model_frames} frame at once cannot continue a segment")
    plan, stop = [Segment(0, model_frames, seed, model_frames)], model_frames
    while stop < total:
        start, stop = stop, min(total, stop + model_frames - 1)
        plan.append(Segment(start, stop, seed + len(plan), model_frames))
    return plan
