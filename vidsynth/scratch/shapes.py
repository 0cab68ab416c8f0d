"""Synthetic labelled footage for the from-scratch demo, tests and bench: shapes moving in labelled directions.

Each video is a plain background with one or two coloured shapes (discs or squares) that move at a constant
speed in the direction of the current label (``left``, ``right``, ``up``, ``down``), wrapping around the
edges so the motion never has to reverse; the direction changes every 1-2 seconds, all four in turn
(shuffled). The label track is ``labels.csv`` (``video,start,end,label``, seconds, ranges ``[start, end)``
on frame boundaries), the format :mod:`vidsynth.scratch.labels` reads. Everything is drawn from ``seed``
and encoded with the project's writer, so the same seed gives the same decoded frames.
"""

import colorsys
import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.media.writers import write_video

# The classes and the motion each one stands for, as (dx, dy) in image coordinates (y grows downwards).
DIRECTIONS = {"down": (0, 1), "left": (-1, 0), "right": (1, 0), "up": (0, -1)}
SPEED = 1 / 24  # of the frame size per frame: 2.7 px at 64 px, enough to see in a few frames at 32 px
_SUPERSAMPLE = 4  # shapes are drawn 4x larger and box-filtered down, so sub-pixel motion shows


def _segments(rng: np.random.Generator, num_frames: int, fps: int) -> list[tuple[int, int, str]]:
    """Consecutive (first frame, end frame, direction) ranges covering the video, each 1-2 s long.

    Directions come in shuffled rounds of all four (never the same twice in a row), so every video of 8 s
    or more shows every class about equally often.
    """
    segments, start, order = [], 0, []
    while start < num_frames:
        if not order:
            order = list(rng.permutation(sorted(DIRECTIONS)))
            if segments and order[0] == segments[-1][2]:
                order.append(order.pop(0))
        end = min(num_frames, start + int(rng.integers(fps, 2 * fps + 1)))
        segments.append((start, end, str(order.pop(0))))
        start = end
    return segments


def _draw(size: int, background, shapes: list[dict], positions: np.ndarray) -> np.ndarray:
    """One frame (size, size, 3) uint8; each shape is drawn at its position and its wrapped copies."""
    big = size * _SUPERSAMPLE
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    for shape, (x, y) in zip(shapes, positions, strict=True):
        r = shape["radius"] * _SUPERSAMPLE
        for wrap_x in (-big, 0, big):
            for wrap_y in (-big, 0, big):
                cx, cy = x * _SUPERSAMPLE + wrap_x, y * _SUPERSAMPLE + wrap_y
                box = (cx - r, cy - r, cx + r, cy + r)
                (draw.ellipse if shape["kind"] == "disc" else draw.rectangle)(box, fill=shape["colour"])
    return np.asarray(image.resize((size, size), Image.BOX))


def _render(rng: np.random.Generator, num_frames: int, fps: int, size: int):
    """Frames (F, size, size, 3) uint8 and the label segments of one video."""
    background = tuple(int(c) for c in rng.integers(0, 60, 3))
    hue = rng.uniform()
    shapes = [
        {
            "kind": str(rng.choice(["disc", "square"])),
            # saturated colours, the second far from the first in hue, so the shapes stand apart
            "colour": tuple(round(255 * c) for c in colorsys.hsv_to_rgb((hue + i * rng.uniform(0.3, 0.7)) % 1, 1, 1)),
            "radius": float(rng.uniform(0.09, 0.15) * size),
        }
        for i in range(int(rng.integers(1, 3)))
    ]
    positions = rng.uniform(0, size, (len(shapes), 2))
    segments = _segments(rng, num_frames, fps)
    frames = []
    for start, end, direction in segments:
        step = np.array(DIRECTIONS[direction], dtype=np.float64) * SPEED * size
        for _ in range(start, end):
            positions = (positions + step) % size  # frame t shows the shapes after moving one step in label t
            frames.append(_draw(size, background, shapes, positions))
    return np.stack(frames), segments


def make_shapes(
    out: str | os.PathLike, *, seed: int = 0, num_videos: int = 4, seconds: float = 8, fps: int = 8, size: int = 64
) -> Path:
    """Render ``num_videos`` labelled videos into ``out/videos/shapes_NNN.mp4`` plus ``out/labels.csv``.

    ``out`` must be new or empty; it appears complete or not at all. Returns ``out``.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VidSynthError(f"{out} already exists and is not an empty folder. Choose a new folder or empty it.")
    num_frames = round(seconds * fps)
    if num_videos < 1 or num_frames < 1 or fps < 1:
        raise VidSynthError(f"make_shapes needs at least one video of one frame, got {num_videos} x {seconds} s.")
    if size < 8 or size % 2:
        raise VidSynthError(f"size must be an even number of pixels >= 8 (H.264 needs even sizes), got {size}.")
    with atomic_path(out, folder=True) as tmp:
        rows = []
        for index in range(num_videos):
            frames, segments = _render(np.random.default_rng([seed, index]), num_frames, fps, size)
            name = f"shapes_{index:03d}.mp4"
            write_video(tmp / "videos" / name, frames, fps)
            rows += [(name, round(start / fps, 6), round(end / fps, 6), label) for start, end, label in segments]
        with open(tmp / "labels.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["video", "start", "end", "label"])
            writer.writerows(rows)
    return out
