"""The source's sound for an edited video: cut with moviepy, keeping the channel layout and the exact span.

Editing works on frames only, so results are silent. A :class:`SoundSpan` names the stretch of the
source's sound that belongs to the edited frames (``start`` = first frame index / source fps,
``duration`` = the edited video's length). :func:`sound_track` has moviepy cut that stretch and encode
it as AAC; :func:`vidsynth.media.writers.write_video` muxes it while encoding the frames (one encode), and
:func:`add_sound` puts it next to an existing video's stream, copied untouched.

A source without sound, or a span starting after its sound ends, gives silence and a log line, not an
error: a clip without audio is a normal input.
"""

import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from moviepy import AudioClip
from moviepy.audio.io.readers import FFMPEG_AudioReader
from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

_SAMPLE_BYTES = 2  # 16-bit samples between the decoder and the AAC encoder: below AAC's own noise
_SHOWINFO = re.compile(r"channels:(\d+) .*?rate:(\d+)")


@dataclass(frozen=True)
class SoundSpan:
    """The source's sound from ``start`` for ``duration`` seconds."""

    source: str | Path
    start: float
    duration: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and self.start >= 0):
            raise VidSynthError(f"The sound span needs start >= 0 seconds, got {self.start}. Fix the start.")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise VidSynthError(f"The sound span needs duration > 0 seconds, got {self.duration}. Fix the duration.")


@dataclass(frozen=True)
class _SourceSound:
    """What moviepy's reader needs to decode the source's first audio stream as it is."""

    duration: float  # seconds, of the whole file (ffmpeg's header figure)
    channels: int
    rate: int  # samples per second


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` made absolute, or a :class:`VidSynthError` naming ``what`` is missing."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise VidSynthError(f"{what} not found: {path}. Check the path; it should point at a video file (e.g. .mp4).")
    return path


def _probe(source: Path) -> _SourceSound | None:
    """The source's sound as decoded, or None when it has no audio stream.

    moviepy's header parser finds the stream and the duration but not the channel count, which its
    reader needs (it decodes to 2 channels unless told, down-mixing 5.1 and doubling mono); ffmpeg's
    ``ashowinfo`` filter reports count and rate of the first decoded audio frame.
    """
    try:
        infos = ffmpeg_parse_infos(str(source))
    except (OSError, KeyError, IndexError, ValueError) as err:
        raise VidSynthError(f"Cannot read {source} as a media file ({err}). Check that it plays.") from err
    if not infos["audio_found"]:
        return None
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(source)]
    command += ["-map", "0:a:0", "-frames:a", "1", "-af", "ashowinfo", "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True)
    match = _SHOWINFO.search(result.stderr)
    if result.returncode != 0 or match is None:
        raise VidSynthError(
            f"Cannot decode the audio of {source}: {result.stderr.strip()[-300:]}. "
            "Check that it plays; re-encode it with ffmpeg if not."
        )
    return _SourceSound(duration=float(infos["duration"]), channels=int(match[1]), rate=int(match[2]))


def _write_span(source: Path, sound: _SourceSound, span: SoundSpan, track: Path) -> None:
    """Encode ``source``'s sound from ``span.start`` (to its end at most) as AAC into ``track``.

    The reader gets the source's channel count and rate, so layouts and samples pass through
    unmixed; ``subclipped`` shifts time by ``start``, which the reader rounds to the nearest sample.
    """
    reader = FFMPEG_AudioReader(
        str(source), buffersize=200_000, fps=sound.rate, nbytes=_SAMPLE_BYTES, nchannels=sound.channels
    )
    try:
        whole = AudioClip(frame_function=reader.get_frame, duration=reader.duration, fps=sound.rate)
        end = min(span.start + span.duration, reader.duration)
        whole.subclipped(span.start, end).write_audiofile(
            str(track), fps=sound.rate, nbytes=_SAMPLE_BYTES, codec="aac", logger=None
        )
    finally:
        reader.close()


@contextmanager
def sound_track(span: SoundSpan | None) -> Iterator[Path | None]:
    """Yield a temporary AAC file (.m4a) with the span's sound, or None if there is no sound to add.

    None comes with an INFO line when the source has no audio and a warning when the span starts
    after its end; a span running past the end keeps what there is. The file is removed afterwards.
    """
    if span is None:
        yield None
        return
    source = require_file(span.source, "Audio source")
    sound = _probe(source)
    if sound is None:
        logger.info("%s has no audio track; writing the video without sound.", source)
        yield None
        return
    if span.start >= sound.duration:
        logger.warning(
            "The sound span starts at %.3f s, after the end of %s (%.3f s); writing the video without sound.",
            span.start,
            source,
            sound.duration,
        )
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="vidsynth-sound-") as scratch:
        track = Path(scratch) / "sound.m4a"
        _write_span(source, sound, span, track)
        logger.debug(
            "Sound: %.3f s of %s from %.3f s (%d channels)", span.duration, source.name, span.start, sound.channels
        )
        yield track


def add_sound(video: str | os.PathLike, span: SoundSpan, out: str | os.PathLike) -> bool:
    """Write ``out``: ``video``'s video stream, copied untouched, with the span's sound; ``out`` may be ``video``.

    Returns False (and writes the video alone) when the source has no sound in the span. The mux is
    one ffmpeg call with explicit stream maps: moviepy's ``ffmpeg_merge_video_audio`` has none, so
    ffmpeg would pick the audio stream with the most channels across both inputs, and a video that
    already has sound could keep its old track instead of the new one.
    """
    video = require_file(video, "Edited video")
    out = Path(out).expanduser().absolute()
    with sound_track(span) as track:
        if track is None:
            if out != video:
                with atomic_path(out) as tmp:
                    shutil.copyfile(video, tmp)
            return False
        with atomic_path(out) as tmp:
            command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error"]
            command += ["-i", str(video), "-i", str(track), "-map", "0:v:0", "-map", "1:a:0", "-c", "copy"]
            command += ["-movflags", "+faststart", str(tmp)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise VidSynthError(
                    f"ffmpeg could not put the sound of {span.source} on {video}: {result.stderr.strip()[-500:]}. "
                    "Check that both files play; re-encode them with ffmpeg if not."
                )
    return True
