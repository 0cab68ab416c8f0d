"""The footage a from-scratch model learns from: finding its sources and reading frames, fitted to a square.

A source is a video file (probed with the project's reader, :mod:`vidsynth.media.video`, and decoded with
decord like it: only the frames asked for, scaled while decoding) or a folder of numbered PNG/JPG frames
(its rate from the ``frames.json`` that ``python -m vidsynth.frames extract`` writes, else
:data:`DEFAULT_FPS`). Frames are resized keeping their aspect ratio so the longer side is ``resolution``,
and centred on a square of black (:data:`PAD_VALUE` in [-1, 1]). With a cache folder, every frame of a
source is decoded once, fitted, and kept as a raw uint8 ``.npy`` that later reads seek into, so nothing is
decoded again.
"""

import hashlib
import json
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import decord
import numpy as np
from PIL import Image

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.media.video import VIDEO_SUFFIXES, probe_video

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
DEFAULT_FPS = 25.0  # a frame folder's rate when it has no frames.json
PAD_VALUE = -1.0  # black: the pad is exact in uint8 (0), so cached and fresh frames agree
_CACHE_CHUNK = 64  # frames decoded at once while a cache is built
_CACHE_VERSION = 1
_OPEN_READERS = 8  # videos kept open per process (each holds a decoder and the file's index)


@dataclass(frozen=True)
class Source:
    """One video or frame folder. ``frames``: a frame folder's file names in order (None for a video)."""

    name: str  # path under the footage folder (the file name for a single video)
    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    frames: tuple[str, ...] | None = None


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _images(folder: Path) -> list[str]:
    names = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(names, key=_natural_key)


def _frame_folder(folder: Path, name: str, images: list[str]) -> Source:
    try:
        with Image.open(folder / images[0]) as first:
            width, height = first.size
    except OSError as err:
        raise VidSynthError(f"Cannot read {folder / images[0]} as an image ({err}). Re-export it as PNG.") from err
    manifest = folder / "frames.json"
    try:
        fps = float(json.loads(manifest.read_text())["fps"]) if manifest.is_file() else DEFAULT_FPS
    except (ValueError, KeyError, TypeError) as err:
        raise VidSynthError(f"{manifest} has no readable frame rate ({err!r}). Fix its fps or remove it.") from err
    if not fps > 0:
        raise VidSynthError(f"{manifest} gives the frame rate {fps}. Make it positive.")
    return Source(name, folder, len(images), fps, width, height, tuple(images))


def _video(path: Path, name: str) -> Source:
    info = probe_video(path)
    return Source(name, path, info.num_frames, info.fps, info.width, info.height)


def find_sources(path) -> list[Source]:
    """Every video and frame folder at or under ``path`` (hidden names skipped), sorted by name."""
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise VidSynthError(f"Footage not found: {root}. Point data.path at a video or a folder of them.")
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise VidSynthError(f"{root} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}). Point data.path at one.")
        return [_video(root, root.name)]
    sources = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        relative = folder.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if images := _images(folder):
            sources.append(_frame_folder(folder, relative.as_posix() if relative.parts else folder.name, images))
        for file in sorted(folder.iterdir()):
            if file.is_file() and file.suffix.lower() in VIDEO_SUFFIXES and not file.name.startswith("."):
                sources.append(_video(file, file.relative_to(root).as_posix()))
    if not sources:
        raise VidSynthError(
            f"No videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or folders of PNG/JPG frames under {root}. "
            "Point data.path at your footage."
        )
    return sorted(sources, key=lambda s: _natural_key(s.name))


def fitted_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The size (w, h) that keeps the aspect ratio with the longer side equal to ``resolution``."""
    scale = resolution / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _pad(frames: np.ndarray, resolution: int) -> np.ndarray:
    """Centre (F, h, w, 3) uint8 frames on a black (F, R, R, 3) square."""
    count, height, width, _ = frames.shape
    out = np.zeros((count, resolution, resolution, 3), dtype=np.uint8)
    top, left = (resolution - height) // 2, (resolution - width) // 2
    out[:, top : top + height, left : left + width] = frames
    return out


class FrameReader:
    """Reads fitted frames, only those asked for, keeping the last few videos open in this process.

    decord indexes the whole file when it opens one (0.1 s per 10 000 frames), so opening per window, as
    :func:`vidsynth.media.video.read_frames` does, would make a window of an hour-long video cost a second.
    Open readers stay with the process that opened them: a DataLoader worker (forked or sent a pickled copy)
    opens its own.
    """

    def __init__(self, resolution: int):
        self.resolution = resolution
        self._readers: OrderedDict = OrderedDict()
        self._inherited: list[OrderedDict] = []  # a forked process's copies of its parent's readers
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"resolution": self.resolution}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["resolution"])

    def read(self, source: Source, indices: list[int]) -> np.ndarray:
        """Frames ``indices`` of ``source`` as uint8 (F, R, R, 3), fitted and padded."""
        size = fitted_size(source.width, source.height, self.resolution)
        if source.frames is None:
            frames = self._decode(source, indices, size)
        else:
            frames = np.stack([_read_image(source.path / source.frames[i], size) for i in indices])
        return _pad(frames, self.resolution)

    def _decode(self, source: Source, indices: list[int], size: tuple[int, int]) -> np.ndarray:
        # decord 0.6 mis-strides some output widths (see vidsynth.media.video); multiples of 32 are safe, so
        # frames are scaled to a safe width while decoding and to their fitted width by PIL
        width, height = size
        safe_width = -(-width // 32) * 32
        try:
            batch = self._reader(source.path, safe_width, height).get_batch(indices)
        except (decord.DECORDError, RuntimeError) as err:
            raise VidSynthError(
                f"Cannot decode frames of {source.path} ({str(err).strip().splitlines()[0]}). Re-encode it: "
                f"ffmpeg -i {source.path.name} -c:v libx264 -pix_fmt yuv420p fixed.mp4"
            ) from err
        frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)  # torch bridge or not
        if safe_width == width:
            return frames
        return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in frames])

    def _reader(self, path: Path, width: int, height: int) -> decord.VideoReader:
        if self._pid != os.getpid():  # a forked worker: the parent's decoders are not ours to use, and freeing
            self._inherited.append(self._readers)  # them here crashes decord, so they are kept, unused
            self._readers, self._pid = OrderedDict(), os.getpid()
        key = (path, width, height)
        if key not in self._readers:
            self._readers[key] = decord.VideoReader(str(path), width=width, height=height)
            if len(self._readers) > _OPEN_READERS:
                self._readers.popitem(last=False)
        self._readers.move_to_end(key)
        return self._readers[key]


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize(size, Image.BICUBIC))
    except OSError as err:
        raise VidSynthError(f"Cannot read {path} as an image ({err}). Re-export it as PNG.") from err


class FrameCache:
    """A source's fitted frames on disk (a raw uint8 ``.npy``), built once and read by seeking."""

    def __init__(self, cache_dir: Path, source: Source, reader: FrameReader):
        resolution = reader.resolution
        stat = source.path.stat()
        key = f"{_CACHE_VERSION}|{source.path}|{stat.st_size}|{stat.st_mtime_ns}|{source.num_frames}|{resolution}"
        self.path = cache_dir / f"{Path(source.name).stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"
        self.frame_bytes = resolution * resolution * 3
        self.resolution = resolution
        if not self.path.is_file():
            self._build(source, reader)
        with open(self.path, "rb") as file:
            np.lib.format.read_magic(file)
            np.lib.format.read_array_header_1_0(file)
            self.offset = file.tell()

    def _build(self, source: Source, reader: FrameReader) -> None:
        logger.info("Caching the frames of %s at %d px in %s", source.name, self.resolution, self.path)
        shape = (source.num_frames, self.resolution, self.resolution, 3)
        with atomic_path(self.path) as tmp, open(tmp, "wb") as file:
            np.lib.format.write_array_header_1_0(file, {"descr": "|u1", "fortran_order": False, "shape": shape})
            for start in range(0, source.num_frames, _CACHE_CHUNK):
                indices = list(range(start, min(start + _CACHE_CHUNK, source.num_frames)))
                file.write(reader.read(source, indices).tobytes())

    def read(self, indices: list[int]) -> np.ndarray:
        """Frames ``indices`` as uint8 (F, R, R, 3), read from disk."""
        out = np.empty((len(indices), self.resolution, self.resolution, 3), dtype=np.uint8)
        with open(self.path, "rb") as file:
            for row, index in enumerate(indices):
                file.seek(self.offset + index * self.frame_bytes)
                file.readinto(memoryview(out[row]).cast("B"))
        return out
