"""The training data of a from-scratch video model: every window of frames of the user's footage, read lazily.

A window is ``num_frames`` source frames taken every ``frame_skip + 1`` frames, starting at any frame of a
source (windows overlap; a source of N frames has ``N - (num_frames - 1) * (frame_skip + 1)`` of them).
The dataset keeps only where its sources are, how many frames they have and their labels; an item decodes
its window's frames and nothing else (or reads them from the cache), so memory does not grow with the
length of the footage. With class labels, windows that contain a frame no label range covers are left out.
"""

import logging
import os
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidsynth.errors import VidSynthError
from vidsynth.scratch.footage import PAD_VALUE, FrameCache, FrameReader, Source, find_sources
from vidsynth.scratch.labels import UNLABELLED, FrameLabels, Track, read_labels

logger = logging.getLogger(__name__)


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise VidSynthError(f"data.{name} must be an integer >= {low}, got {value!r}. Set it to {low} or more.")
    return int(value)


def _too_short(source: Source, num_frames: int, frame_skip: int, span: int) -> VidSynthError:
    fixes = [f"num_frames <= {(source.num_frames - 1) // (frame_skip + 1) + 1}"]
    if num_frames > 1 and (skip := (source.num_frames - 1) // (num_frames - 1) - 1) >= 0:
        fixes.append(f"frame_skip <= {skip}")
    return VidSynthError(
        f"{source.name} has {source.num_frames} frames, shorter than one window ({num_frames} frames every "
        f"{frame_skip + 1} = {span} source frames). Lower data.{' or data.'.join(fixes)}, or remove that video."
    )


class FootageWindows(Dataset):
    """Every window of every video / frame folder under ``path``, as model inputs.

    Item: ``{"pixel_values": FloatTensor (F, 3, R, R) in [-1, 1], "labels": LongTensor (F,) class ids or
    FloatTensor (F, D) vectors}``; "labels" is absent without a label file. ``labels``: a file that
    :func:`vidsynth.scratch.labels.read_labels` reads. ``cache_dir``: keep every source's fitted frames
    there as raw uint8 (built here, once per source and resolution) instead of decoding each window.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        num_frames: int,
        frame_skip: int,
        resolution: int,
        labels: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.num_frames = _check_int("num_frames", num_frames, 1)
        self.frame_skip = _check_int("frame_skip", frame_skip, 0)
        self.resolution = _check_int("resolution", resolution, 1)
        self.pad_value = PAD_VALUE
        self.sources = find_sources(path)
        span = (self.num_frames - 1) * (self.frame_skip + 1) + 1
        if short := [s for s in self.sources if s.num_frames < span]:
            raise _too_short(short[0], self.num_frames, self.frame_skip, span)
        if len(rates := {round(s.fps, 3) for s in self.sources}) > 1:
            logger.warning("The footage mixes frame rates %s; windows take frames, not seconds.", sorted(rates))
        self.fps = self.sources[0].fps / (self.frame_skip + 1)

        self._labels: FrameLabels | None = None
        if labels is not None:
            self._labels = read_labels(labels, [Track(s.name, s.num_frames, s.fps) for s in self.sources])
        self.class_names = None if self._labels is None else self._labels.class_names
        self.label_dim = None if self._labels is None else self._labels.label_dim

        # per source: None when every start makes a window, else the starts that do (labels with gaps)
        self._starts = [self._labelled_starts(s, span) for s in self.sources]
        counts = [
            s.num_frames - span + 1 if x is None else len(x) for s, x in zip(self.sources, self._starts, strict=True)
        ]
        self._ends = np.cumsum(counts)
        if not self._ends[-1]:
            raise VidSynthError(
                f"Every window of {span} source frames contains frames that no range in {Path(labels).name} covers. "
                "Label the footage without gaps, or lower data.num_frames or data.frame_skip."
            )
        self._reader = FrameReader(self.resolution)
        self._caches = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir).expanduser().absolute()
            self._caches = [FrameCache(cache_dir, s, self._reader) for s in self.sources]

    def _labelled_starts(self, source: Source, span: int) -> np.ndarray | None:
        """The first frames of the windows whose frames all have a class, or None when that is every window."""
        if self.class_names is None:
            return None
        ids = self._labels.per_source[source.name]
        starts = np.arange(source.num_frames - span + 1)
        keep = np.ones(len(starts), dtype=bool)
        for offset in range(0, span, self.frame_skip + 1):
            keep &= ids[starts + offset] != UNLABELLED
        return None if keep.all() else starts[keep]

    def __len__(self) -> int:
        return int(self._ends[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        """(source number, first frame) of window ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} of {len(self)}")
        index %= len(self)
        number = int(np.searchsorted(self._ends, index, side="right"))
        offset = index - (int(self._ends[number - 1]) if number else 0)
        starts = self._starts[number]
        return number, offset if starts is None else int(starts[offset])

    def window(self, index: int) -> tuple[Source, list[int]]:
        """The source and source frame indices of window ``index``."""
        number, start = self._locate(index)
        stride = self.frame_skip + 1
        return self.sources[number], list(range(start, start + self.num_frames * stride, stride))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        number, _ = self._locate(index)
        source, indices = self.window(index)
        if self._caches is None:
            frames = self._reader.read(source, indices)
        else:
            frames = self._caches[number].read(indices)
        item = {"pixel_values": torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0}
        if self._labels is not None:
            labels = torch.from_numpy(self._labels.per_source[source.name][indices])
            item["labels"] = labels if self.class_names is not None else labels.float()
        return item
