"""Which frames of a clip an edit reads: the span asked for, else the tuning run's, else the defaults.

:func:`resolve_span` turns what was asked (an edit's clip options, e.g. an
:class:`~vidsynth.config.inference.InferenceConfig`) into one checked :class:`ClipSpan`, reading the
clip's header once. Options left unset come from the tuning run's ``train_data`` (VidSynth's and the
original Tune-A-Video's have the same keys), then from the tuning defaults the caller passes, and
the size from the clip's own aspect ratio.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidsynth.errors import VidSynthError
from vidsynth.media.video import Clip, VideoInfo, check_clip_request, probe_video, read_clip

LONG_SIDE = 512  # default size: SD-1.x's training size on the clip's longer side


class SpanOptions(Protocol):
    """An edit's clip options (unset: None); ``num_frames`` may be ``"all"``, ``start``/``end`` are seconds."""

    video: str | None
    start: float | None
    end: float | None
    start_frame: int | None
    num_frames: int | str | None
    stride: int | None
    width: int | None
    height: int | None
    window: int | None
    window_overlap: int | None


@dataclass(frozen=True)
class ClipSpan:
    """Which frames of which clip, at which size; ``info`` is the clip's header, read once."""

    info: VideoInfo
    num_frames: int
    width: int
    height: int
    start_frame: int
    stride: int
    window: int  # frames the UNet sees at once (spans longer than this go in overlapping windows)
    window_overlap: int

    @property
    def path(self) -> str:
        return self.info.path

    def read(self) -> Clip:
        """Decode the span: (F, 3, H, W) pixels in [-1, 1] with where they came from."""
        return read_clip(self.info, self.num_frames, self.width, self.height, self.start_frame, self.stride)

    @property
    def frame_indices(self) -> range:
        """The source frames that are edited."""
        return range(self.start_frame, self.start_frame + self.num_frames * self.stride, self.stride)


def default_size(info: VideoInfo) -> tuple[int, int]:
    """The clip's aspect ratio with :data:`LONG_SIDE` on its longer side, both multiples of 8."""
    scale = LONG_SIDE / max(info.width, info.height)
    return tuple(max(8, round(side * scale / 8) * 8) for side in (info.width, info.height))


def _frame_at(seconds: float, info: VideoInfo) -> int:
    """Index of the first frame shown at or after ``seconds``."""
    return math.ceil(seconds * info.fps - 1e-6)


def _span_bounds(asked: SpanOptions, tuned: Mapping, info: VideoInfo) -> tuple[int, int]:
    """[start, end) source-frame indices of the span: by time, by frame, or the tuning run's span."""
    duration = info.num_frames / info.fps
    if asked.start is not None:
        if asked.start >= duration:
            raise VidSynthError(
                f"--start {asked.start:g} s is outside {Path(info.path).name}, which lasts {duration:.3f} s. "
                f"Start before {duration:.3f} s"
            )
        start = _frame_at(asked.start, info)
    else:
        start = asked.start_frame if asked.start_frame is not None else tuned.get("sample_start_idx") or 0
    if asked.end is not None:
        if asked.end > duration + 1 / info.fps:
            raise VidSynthError(
                f"--end {asked.end:g} s is outside {Path(info.path).name}, which lasts {duration:.3f} s. "
                f"End at {duration:.3f} s at the latest (or leave --end out for the clip's end)"
            )
        end = min(_frame_at(asked.end, info), info.num_frames)
    else:
        end = tuned.get("sample_end_idx") or info.num_frames
    if end <= start:
        raise VidSynthError(
            f"the span ends (frame {end}, {end / info.fps:.3f} s) before it starts (frame {start}, "
            f"{start / info.fps:.3f} s). Give an end after the start"
        )
    return start, end


def resolve_span(asked: SpanOptions, tuned: Mapping, default_frames: int, default_stride: int) -> ClipSpan:
    """The span ``asked`` for, else the tuning run's (``tuned``: its ``train_data``), else the defaults; checked.

    Frames, unasked for: every frame of the span when a time span was asked for or the run tuned on
    random windows of its span; else the run's ``n_sample_frames`` (the original's one window); else
    ``default_frames``, cut to what the clip has. The window defaults to the run's ``n_sample_frames``
    (else ``default_frames``) and its overlap to a quarter of it, at most 4.
    """
    path = asked.video or tuned.get("video_path")
    if not path:
        raise VidSynthError("no clip to edit: this model does not name one. Pass --video with the clip")
    info = probe_video(path)

    def pick(value: int | None, tuned_key: str, default: int) -> int:
        return value if value is not None else (tuned.get(tuned_key) or default)

    width, height = default_size(info)
    window = asked.window or tuned.get("n_sample_frames") or default_frames
    stride = pick(asked.stride, "sample_frame_rate", default_stride)
    start, end = _span_bounds(asked, tuned, info)
    available = len(range(start, end, stride))
    whole_span = asked.start is not None or asked.end is not None or tuned.get("window_sampling") == "random"
    if asked.num_frames == "all" or (asked.num_frames is None and whole_span):
        num_frames = available
    else:
        num_frames = pick(asked.num_frames, "n_sample_frames", min(default_frames, max(available, 1)))
    if num_frames > available and end < info.num_frames:  # a span to the clip's end: checked below, with the fix
        raise VidSynthError(
            f"the span (frames {start} to {end - 1}) at stride {stride} has {available} frames, but {num_frames} "
            f"were asked. Lower --frames to {available}, or use --frames all"
        )
    span = ClipSpan(
        info=info,
        num_frames=num_frames,
        width=pick(asked.width, "width", width),
        height=pick(asked.height, "height", height),
        start_frame=start,
        stride=stride,
        window=window,
        window_overlap=min(4, window // 4) if asked.window_overlap is None else asked.window_overlap,
    )
    check_clip_request(info, span.num_frames, span.width, span.height, span.start_frame, span.stride)
    if asked.window is not None and asked.window > span.num_frames:
        raise VidSynthError(
            f"window {asked.window} is larger than the span's {span.num_frames} frames. Use a window of at most "
            f"{span.num_frames} frames, or leave window out"
        )
    return span


def frame_indices_record(indices: Sequence[int], stride: int) -> dict:
    """Evenly spaced source frames as a sidecar writes them: ``{"start", "stop", "stride"}``, stop exclusive.

    One line instead of one index per line (a whole clip has hundreds); :func:`frame_indices_from` reads it.
    """
    return {"start": int(indices[0]), "stop": int(indices[-1]) + stride, "stride": stride}


def frame_indices_from(record: Mapping | Sequence[int]) -> list[int]:
    """The source frames a sidecar names: its ``{"start", "stop", "stride"}`` or, as older sidecars have it, a list.

    Raises ``KeyError``, ``TypeError`` or ``ValueError`` on anything else, for the reader to report.
    """
    if isinstance(record, Mapping):
        return list(range(int(record["start"]), int(record["stop"]), int(record["stride"])))
    if isinstance(record, str):
        raise TypeError(f"frame_indices is a string ({record!r}), not a list or a start/stop/stride range")
    return [int(i) for i in record]
