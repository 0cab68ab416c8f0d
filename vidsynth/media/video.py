"""Reading clips with decord, the way Tune-A-Video does, plus the checks that run before any model loads.

Frame indices follow the original: ``range(start, total_frames, stride)``, of which the first
``num_frames`` are used (the original's ``sample_start_idx``, ``sample_frame_rate`` and
``n_sample_frames``); decord resizes (stretches) every frame to W x H and pixels are scaled to
[-1, 1]. :func:`check_clip_request` validates a request from the file's header and first frame
only, so a typo costs a second rather than a model load, and :func:`read_clip` takes the
:class:`VideoInfo` it returns so the header is read once.
"""

import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import decord
import numpy as np
from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos
from PIL import Image

from vidsynth.errors import VidSynthError

if TYPE_CHECKING:
    import torch  # imported where frames become tensors: the checks before a model loads run without torch

logger = logging.getLogger(__name__)

# The VAE downsamples by 8, so the latent grid needs sizes divisible by 8.
SIZE_MULTIPLE = 8
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg"}  # what a clip's file is called


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds, as read from its header and first frame."""

    path: str  # absolute
    num_frames: int
    fps: float
    width: int
    height: int
    has_audio: bool


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors element-wise has no single truth value
class Clip:
    """Frames sampled from a video for tuning or inversion, with where they came from.

    The frames are kept as decoded, uint8: a whole clip as float32 would take 4x the memory, so
    :meth:`pixel_chunk` converts a few frames at a time for the models that need them.
    """

    frames: np.ndarray  # (F, H, W, 3) uint8
    path: str  # absolute
    source_fps: float
    frame_indices: tuple[int, ...]
    width: int
    height: int
    stride: int  # source frames between two sampled frames

    @property
    def pixels(self) -> "torch.Tensor":
        """All frames as the models take them: (F, 3, H, W) float32 in [-1, 1]."""
        return self.pixel_chunk(0, len(self.frames))

    def pixel_chunk(self, start: int, stop: int) -> "torch.Tensor":
        """Frames ``start:stop`` as (f, 3, H, W) float32 in [-1, 1]."""
        import torch

        return torch.from_numpy(self.frames[start:stop]).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def first(self, num_frames: int) -> "Clip":
        """The clip's first ``num_frames`` frames (a view of the same uint8 array)."""
        if num_frames >= len(self.frames):
            return self
        return dataclasses.replace(self, frames=self.frames[:num_frames], frame_indices=self.frame_indices[:num_frames])

    def pixel_frames(self) -> Iterator["torch.Tensor"]:
        """Every frame as (1, 3, H, W) float32 in [-1, 1], made one at a time."""
        return (self.pixel_chunk(i, i + 1) for i in range(len(self.frames)))

    @property
    def fps(self) -> float:
        """The frame rate that plays the sampled frames at the source's speed."""
        return self.source_fps / self.stride

    @property
    def start(self) -> float:
        """Seconds into the source at which the first sampled frame is shown."""
        return self.frame_indices[0] / self.source_fps

    @property
    def duration(self) -> float:
        """Seconds the sampled frames last at :attr:`fps` (the span of source sound that belongs to them)."""
        return len(self.frame_indices) / self.fps

    def metadata(self) -> dict:
        """JSON-able description, the ``source`` part of an output's sidecar (plus size and rate)."""
        return {
            "path": self.path,
            "source_fps": self.source_fps,
            "frame_indices": list(self.frame_indices),
            "width": self.width,
            "height": self.height,
            "start": self.start,
            "duration": self.duration,
            "fps": self.fps,
            "stride": self.stride,
        }


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise VidSynthError(
            f"Video file not found: {path}. Check the path; it should point at a video file (e.g. .mp4)."
        )
    if not path.is_file():
        raise VidSynthError(f"{path} is not a file. Point the path at a video file (e.g. .mp4), not a folder.")
    return path


def _open_reader(path: Path, width: int = -1, height: int = -1) -> decord.VideoReader:
    """Open with decord; an unreadable file becomes a VidSynthError with the re-encode fix."""
    try:
        return decord.VideoReader(str(path), width=width, height=height)
    except (decord.DECORDError, RuntimeError, AssertionError) as err:
        raise _unreadable(path, err) from err


def _unreadable(path: Path, err: Exception) -> VidSynthError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return VidSynthError(
        f"Cannot read {path} as a video (corrupt, truncated or not a video: {reason}). "
        f"If it plays elsewhere, re-encode it: ffmpeg -i {path.name} -c:v libx264 -pix_fmt yuv420p fixed.mp4"
    )


def _as_numpy(batch) -> np.ndarray:
    """decord returns its own NDArray, or a torch tensor when someone set the torch bridge globally."""
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


def _decode(path: Path, indices: list[int], width: int = -1, height: int = -1) -> np.ndarray:
    """Decode frames as uint8 (F, H, W, 3), resized (stretched) by decord when a size is given."""
    try:
        return _as_numpy(_open_reader(path, width, height).get_batch(indices))
    except decord.DECORDError as err:
        if "must exactly match" not in str(err):
            raise _unreadable(path, err) from err
    # decord 0.6 mis-strides a few widths (8, 16, 24, 48 and 72 among the multiples of 8), output or
    # native: its scaler pads each row and the copy into the batch fails. Multiples of 32 are safe, so
    # decode at the next one and resize with PIL's bicubic filter, the closest match to decord's scaler.
    if width == -1:
        height, width = _open_reader(path).next().shape[:2]
    safe_width = -(-width // 32) * 32
    logger.debug("decord cannot decode at width %d; decoding at %d and resizing with PIL", width, safe_width)
    decoded = _decode(path, indices, safe_width, height)  # (F, H, safe_width, 3)
    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC)) for frame in decoded])


def _has_audio(path: Path) -> bool:
    """Audio presence from ffmpeg's header listing (moviepy's parser); nothing is decoded."""
    try:
        return bool(ffmpeg_parse_infos(str(path))["audio_found"])
    except (OSError, KeyError, IndexError, ValueError) as err:
        logger.warning("Could not check %s for an audio track (%s); assuming none.", path, err)
        return False


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, rate, size (decord: header plus the first frame) and whether there is sound."""
    path = _existing_file(path)
    reader = _open_reader(path)
    try:
        first = _as_numpy(reader.next())  # (H, W, 3)
    except (decord.DECORDError, RuntimeError, StopIteration) as err:
        raise _unreadable(path, err) from err
    fps = float(reader.get_avg_fps())
    if not fps > 0:
        raise _unreadable(path, ValueError(f"frame rate {fps}"))
    height, width = first.shape[:2]
    return VideoInfo(str(path), len(reader), fps, int(width), int(height), _has_audio(path))


def _nearest_multiples(value: int) -> str:
    """The valid sizes either side of ``value`` (just the smallest one for values below it)."""
    lower = (value // SIZE_MULTIPLE) * SIZE_MULTIPLE
    return f"{lower} or {lower + SIZE_MULTIPLE}" if lower >= SIZE_MULTIPLE else str(SIZE_MULTIPLE)


def _check_request(num_frames, width, height, start, stride) -> None:
    """Checks on the numbers alone, before the file is opened."""
    for name, value, low in (("num_frames", num_frames, 1), ("stride", stride, 1), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise VidSynthError(f"{name} must be an integer >= {low}, got {value!r}. Set it to {low} or more.")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise VidSynthError(f"{name} must be an integer multiple of {SIZE_MULTIPLE}, got {value!r}. Use e.g. 512.")
        if value <= 0 or value % SIZE_MULTIPLE:
            raise VidSynthError(
                f"{name} must be a positive multiple of {SIZE_MULTIPLE} (the VAE works on 8x8 blocks), got {value}. "
                f"Use {_nearest_multiples(int(value))}."
            )


def sample_indices(total_frames: int, num_frames: int, start: int = 0, stride: int = 1) -> list[int]:
    """The frame indices Tune-A-Video samples (may be fewer than asked when the clip is short)."""
    return list(range(start, total_frames, stride))[:num_frames]


def _too_short(info: VideoInfo, n: int, start: int, stride: int, available: int) -> VidSynthError:
    # Named as in both configs: train.py's keys (the original's) and inference.py's flags.
    fixes = [f"lower the frame count (n_sample_frames, --frames) to {available}" if available else None]
    if n > 1 and (max_stride := (info.num_frames - 1 - start) // (n - 1)) >= 1:
        fixes.append(f"lower the stride (sample_frame_rate, --stride) to {max_stride}")
    if (max_start := info.num_frames - 1 - (n - 1) * stride) >= 0:
        fixes.append(f"start earlier (sample_start_idx, start_frame <= {max_start})")
    fix = ", or ".join(f for f in fixes if f) or "use a longer clip"
    return VidSynthError(
        f"{info.path} has {info.num_frames} frames; from frame {start} at stride {stride} that makes "
        f"{available} frames, but {n} were asked. Fix: {fix}."
    )


def check_clip_request(
    source: str | os.PathLike | VideoInfo, num_frames: int, width: int, height: int, start: int = 0, stride: int = 1
) -> VideoInfo:
    """Validate a sampling request without decoding the clip; returns the clip's info.

    ``source``: the clip's path, or its :class:`VideoInfo` when the header was already read.
    """
    _check_request(num_frames, width, height, start, stride)
    info = source if isinstance(source, VideoInfo) else probe_video(source)
    available = len(range(start, info.num_frames, stride))
    if available < num_frames:
        raise _too_short(info, num_frames, start, stride, available)
    return info


def read_clip(
    source: str | os.PathLike | VideoInfo, num_frames: int, width: int, height: int, start: int = 0, stride: int = 1
) -> Clip:
    """Sample frames like Tune-A-Video's dataset: stretched to W x H, pixels in [-1, 1]."""
    info = check_clip_request(source, num_frames, width, height, start, stride)
    indices = sample_indices(info.num_frames, num_frames, start, stride)
    frames = _decode(Path(info.path), indices, width, height)  # (F, H, W, 3) uint8
    return Clip(frames, info.path, info.fps, tuple(indices), width, height, stride)


def read_frames(
    path: str | os.PathLike, frame_indices, width: int | None = None, height: int | None = None
) -> np.ndarray:
    """Decode the given frames as uint8 (F, H, W, 3), stretched to W x H when given (native size otherwise)."""
    if (width is None) != (height is None):
        raise ValueError("Give both width and height, or neither.")
    path = _existing_file(path)
    num_frames = len(_open_reader(path))
    indices = [int(i) for i in frame_indices]
    if bad := [i for i in indices if not 0 <= i < num_frames]:
        raise VidSynthError(
            f"{path} has {num_frames} frames, but frames {bad[:5]} were asked. Use 0..{num_frames - 1}."
        )
    if not indices:
        raise ValueError("No frame indices given.")
    return _decode(path, indices, -1 if width is None else width, -1 if height is None else height)
