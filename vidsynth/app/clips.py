"""The clips the app tunes on: uploads and samples kept in ``<outputs>/clips/``, their facts, and the span check.

An uploaded file is checked with :func:`vidsynth.media.video.probe_video` before it is kept, so a file that
is not a video gets the command line's message and is not stored. A kept clip is named after its
content, so uploading the same clip twice keeps one file, and runs tuned on it (whose configs name
its absolute path) keep finding it after the app restarts. The span the page offers is checked with
``train.py``'s own checks on the clip's header, so the messages are the command line's, before
anything runs.
"""

import hashlib
import shutil
from pathlib import Path

from vidsynth.atomic import atomic_path
from vidsynth.config.train import TrainDataConfig
from vidsynth.errors import VidSynthError
from vidsynth.media.video import VIDEO_SUFFIXES, VideoInfo, check_clip_request, probe_video
from vidsynth.naming import slugify
from vidsynth.training.preflight import check_span
from vidsynth.training.span import TuningSpan

SAMPLE_SCENE = "scene.mp4"  # rendered at the first start, so there is always a clip to try


def list_clips(folder: Path) -> list[str]:
    """Names of the videos in ``folder``, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name[0] == ".")


def clip_path(folder: Path, name: str | None) -> Path:
    """The clip ``name`` of ``folder`` (only names :func:`list_clips` lists, so no path leaves the folder)."""
    if not name:
        raise VidSynthError("no clip chosen. Upload a video or pick one from the samples")
    if name not in list_clips(folder):
        raise VidSynthError(f"there is no clip {name!r} in {folder}. Upload it again or pick another one")
    return folder / name


def digest(path: Path) -> str:
    """The first 10 hex digits of the SHA-256 of the file's content: the same content, the same name."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()[:10]


def keep_clip(upload: Path, folder: Path) -> Path:
    """Check that ``upload`` is a video, then keep a copy in ``folder`` named after its name and content."""
    probe_video(upload)
    suffix = upload.suffix.lower() if upload.suffix.lower() in VIDEO_SUFFIXES else ".mp4"
    kept = folder / f"{slugify(upload.stem, max_len=40)}-{digest(upload)}{suffix}"
    if kept.is_file():
        kept.touch()  # uploaded again: as recent as a new upload (old uploads are removed, see app/uploads.py)
    else:
        with atomic_path(kept) as partial:
            shutil.copyfile(upload, partial)
    return kept


def render_sample(folder: Path) -> None:
    """The offline demo's scene (a ball in flight, a stereo tone) as a sample clip, the first time."""
    if not (folder / SAMPLE_SCENE).is_file():
        from vidsynth.media.scene import render_scene

        render_scene(folder / SAMPLE_SCENE, num_frames=16, width=128, height=128, fps=8.0, audio_channels=2)


def describe_clip(info: VideoInfo) -> str:
    """The clip's facts in one line."""
    seconds = info.num_frames / info.fps
    sound = "with sound" if info.has_audio else "no sound"
    return (
        f"**{Path(info.path).name}**: {info.width}×{info.height}, {info.fps:g} fps, {info.num_frames} frames, "
        f"{seconds:.2f} s, {sound}"
    )


def default_span(info: VideoInfo, defaults: TrainDataConfig, size: tuple[int, int]) -> dict:
    """A span the clip can hold: the tuning defaults' stride and frames, cut to what the clip has."""
    stride = max(1, min(defaults.sample_frame_rate, info.num_frames // 2))
    frames = min(defaults.n_sample_frames, len(range(0, info.num_frames, stride)))
    return {"start": 0, "end": None, "stride": stride, "frames": frames, "width": size[0], "height": size[1]}


def check_tuning_span(info: VideoInfo, data: TrainDataConfig) -> TuningSpan:
    """``train.py``'s checks of the clip part of its request (frames, sizes, span); returns the span."""
    check_clip_request(
        info, data.n_sample_frames, data.width, data.height, data.sample_start_idx, data.sample_frame_rate
    )
    return check_span(info, data)


def describe_span(info: VideoInfo, span: TuningSpan) -> str:
    """What a tuning run on ``span`` sees, in one line."""
    frames = span.frames
    first, last = frames[0], frames[-1]
    which = "the first" if span.sampling == "fixed" else "a window anywhere in the span"
    return (
        f"Span: frames {first} to {last} at stride {frames.step} ({first / info.fps:.2f}–"
        f"{(last + frames.step) / info.fps:.2f} s), {len(frames)} frames; each tuning step sees {span.window} "
        f"of them ({which})"
    )
