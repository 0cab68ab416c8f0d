"""Writing results: MP4s (with the source's sound when asked), captioned GIF grids, JSON, and their file names.

Every writer goes through :func:`atomic_path`, so a crash or a bad input never leaves a half-written
file behind nor clobbers an earlier result: the file appears under its real name only once complete.
"""

import json
import logging
import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from PIL import Image, ImageDraw

from vidsynth.atomic import atomic_path
from vidsynth.media.captions import caption_font, caption_lines

logger = logging.getLogger(__name__)

# x264's "visually lossless" constant-quality setting: results are small clips, quality matters more than size.
_CRF = 18
_CAPTION_PAD = 4  # pixels around caption text
_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)
GIF_MAX_FRAMES = 48  # a GIF holds every frame uncompressed-ish: 240 frames of a 3-column grid would be ~100 MB


def gif_step(num_frames: int) -> int:
    """Show every k-th frame in a GIF grid so it has at most :data:`GIF_MAX_FRAMES` frames."""
    return max(1, math.ceil(num_frames / GIF_MAX_FRAMES))


def to_uint8(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert one video to uint8 frames of shape (F, H, W, 3), the layout video writers take.

    Accepted layouts (exactly these, 4-D):
      * (F, H, W, 3): channels last, as decord and imageio return;
      * (3, F, H, W): channels first, one video of the pipeline's (batch, 3, F, H, W) output.
    A last axis of 3 wins when both ends are 3. Float input is read as [0, 1] (clipped); uint8 passes
    through unchanged. A batch must be indexed first (``videos[0]``) so no video is dropped silently.
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu", torch.float32 if frames.is_floating_point() else frames.dtype).numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(
            f"Expected one video as (F, H, W, 3) or (3, F, H, W), got shape {frames.shape}; "
            "index a batch first, e.g. videos[0]."
        )
    if frames.shape[-1] == 3:
        pass  # (F, H, W, 3)
    elif frames.shape[0] == 3:
        frames = frames.transpose(1, 2, 3, 0)  # (3, F, H, W) -> (F, H, W, 3)
    else:
        raise ValueError(f"Expected (F, H, W, 3) or (3, F, H, W) with 3 colour channels, got shape {frames.shape}.")
    if frames.dtype == np.uint8:
        return np.ascontiguousarray(frames)
    if not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"Expected float frames in [0, 1] or uint8, got dtype {frames.dtype}.")
    return np.ascontiguousarray((np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def write_video(
    path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float, sound: Path | None = None
) -> Path:
    """Write an H.264 MP4 (yuv420p) with exactly these frames at exactly ``fps``, plus ``sound`` if given.

    ``fps`` is passed to ffmpeg as a fraction, so rates such as 29.97 / 2 keep their timing (moviepy's
    ``write_videofile`` would round it to two decimals). ``sound``: an AAC track, as
    :func:`vidsynth.media.sound.sound_track` cuts it with moviepy (once for all the edits of a clip), muxed
    in the same ffmpeg run that encodes the frames, so the video is encoded once. yuv420p halves the
    colour resolution, hence even width and height.
    """
    video = to_uint8(frames)  # (F, H, W, 3)
    num_frames, height, width, _ = video.shape
    if num_frames == 0:
        raise ValueError("Cannot write a video with no frames.")
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even width and height, got {width}x{height}.")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}.")
    path = Path(path)
    track = sound
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=Fraction(fps).limit_denominator(100_000),
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=None,
            output_params=["-crf", str(_CRF), "-movflags", "+faststart"],
            macro_block_size=1,
            ffmpeg_log_level="error",
            audio_path=None if track is None else str(track),
            audio_codec=None if track is None else "copy",  # already AAC
        )
        writer.send(None)  # start ffmpeg
        for frame in video:
            writer.send(frame)
        writer.close()
    sound_note = "" if track is None else ", with sound"
    logger.debug("Wrote %s (%d frames, %dx%d, %.4g fps%s)", path, num_frames, width, height, fps, sound_note)
    return path


def _resize_to_height(video: np.ndarray, height: int) -> np.ndarray:
    """(F, h, w, 3) -> (F, height, w * height / h, 3), keeping the aspect ratio."""
    _, h, w, _ = video.shape
    if h == height:
        return video
    width = max(1, round(w * height / h))
    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS)) for frame in video])


def grid_frames(columns: Sequence[tuple[str, np.ndarray | torch.Tensor]]) -> np.ndarray:
    """Place videos side by side, each under its caption: uint8 (F, caption + H, sum of widths, 3).

    Columns are resized to the tallest one's height (aspect kept); all must have the same frame count.
    Captions are wrapped to their column and cut to :data:`~vidsynth.media.captions.CAPTION_LINES` lines,
    each in a font that has glyphs for its text; the text size grows with the video (1/32 of its height,
    12 px at least).
    """
    if not columns:
        raise ValueError("A grid needs at least one column.")
    videos = [to_uint8(frames) for _, frames in columns]  # each (F, h, w, 3)
    if len({len(video) for video in videos}) != 1:
        raise ValueError(f"All columns need the same number of frames, got {[len(v) for v in videos]}.")
    height = max(video.shape[1] for video in videos)
    videos = [_resize_to_height(video, height) for video in videos]

    size = max(12, height // 32)
    fonts = [caption_font(caption, size) for caption, _ in columns]
    line_heights = [sum(font.getmetrics()) + 2 for font in fonts]
    captions = [
        caption_lines(caption, font, video.shape[2] - 2 * _CAPTION_PAD)
        for (caption, _), font, video in zip(columns, fonts, videos, strict=True)
    ]
    strip_height = max(len(lines) * lh for lines, lh in zip(captions, line_heights, strict=True)) + 2 * _CAPTION_PAD

    num_frames = len(videos[0])
    captioned = []
    for lines, font, line_height, video in zip(captions, fonts, line_heights, videos, strict=True):
        strip = Image.new("RGB", (video.shape[2], strip_height), _BACKGROUND)
        draw = ImageDraw.Draw(strip)
        for i, line in enumerate(lines):
            draw.text((_CAPTION_PAD, _CAPTION_PAD + i * line_height), line, fill=_TEXT, font=font)
        strip_frames = np.broadcast_to(np.asarray(strip), (num_frames, strip_height, video.shape[2], 3))
        captioned.append(np.concatenate([strip_frames, video], axis=1))  # (F, strip + H, w, 3)
    return np.concatenate(captioned, axis=2)  # (F, strip + H, W_total, 3)


def write_gif_grid(
    path: str | os.PathLike, columns: Sequence[tuple[str, np.ndarray | torch.Tensor]], fps: float
) -> Path:
    """Write the captioned side-by-side grid as a looping GIF (loop=0), 1000 / fps ms per frame.

    GIF stores delays in 1/100 s, so the rate is rounded to that; Pillow merges identical consecutive
    frames into one longer frame, which keeps the timing but can lower the frame count of still clips.
    """
    grid = grid_frames(columns)
    images = [Image.fromarray(frame) for frame in grid]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)
    logger.debug("Wrote %s (%d columns, %d frames)", path, len(columns), len(images))
    return path


def write_grid_video(
    path: str | os.PathLike,
    columns: Sequence[tuple[str, np.ndarray | torch.Tensor]],
    fps: float,
    sound: Path | None = None,
) -> Path:
    """Write the captioned side-by-side grid as an MP4 (with the ``sound`` track), padded to even size for yuv420p."""
    grid = grid_frames(columns)  # (F, H, W, 3)
    _, height, width, _ = grid.shape
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))
    grid = np.pad(grid, pad, constant_values=_BACKGROUND[0])
    return write_video(path, grid, fps, sound)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON; serialised before the file is touched, so a bad value writes nothing."""
    text = json.dumps(data, indent=2) + "\n"
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
