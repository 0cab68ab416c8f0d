"""Put the source's sound back on an edited video.

Editing works on frames only, so the result is silent. This takes the source's audio from the span
that was edited (``start`` = first frame index / source fps, ``duration`` = the edited video's length),
encodes it as AAC and muxes it next to the edited video stream, which is copied untouched.

Usage: python -m postprocess.add_audio --video edited.mp4 --source clip.mp4 --out final.mp4 [--start S] [--duration D]
Without --start, ``source.start`` of the sidecar ``edited.json`` is used when present, else 0.
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg
from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

from vidsynth.cli import run_main
from vidsynth.errors import VidSynthError
from vidsynth.media import atomic_path
from vidsynth.video import probe_video

logger = logging.getLogger(__name__)


def _require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise VidSynthError(f"{what} not found: {path}. Check the path; it should point at a video file (e.g. .mp4).")
    return path


def _copy_video(video: Path, out: Path) -> None:
    if video != out:
        with atomic_path(out) as tmp:
            shutil.copyfile(video, tmp)


def add_audio(
    video: str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    start: float = 0.0,
    duration: float | None = None,
) -> bool:
    """Mux ``source``'s audio from ``start`` for ``duration`` seconds onto ``video``, writing ``out``.

    ``duration`` defaults to the video's length; a span running past the end of the source's sound
    keeps what there is. Returns False (and writes the video alone) when the source has no sound in
    that span. ``out`` may be ``video`` itself.
    """
    video = _require_file(video, "Edited video")
    source = _require_file(source, "Audio source")
    out = Path(out).expanduser().absolute()
    if start < 0 or (duration is not None and duration <= 0):
        raise VidSynthError(f"The audio span needs start >= 0 and duration > 0, got {start} and {duration}. Fix them.")
    if duration is None:
        info = probe_video(video)
        duration = info.num_frames / info.fps

    source_info = ffmpeg_parse_infos(str(source))
    if not source_info["audio_found"]:
        logger.info("%s has no audio track; writing the video without sound.", source)
        _copy_video(video, out)
        return False
    if start >= source_info["duration"]:
        logger.warning(
            "The span starts at %.3f s, after the end of %s (%.3f s); writing the video without sound.",
            start,
            source,
            source_info["duration"],
        )
        _copy_video(video, out)
        return False

    # moviepy 2.2.1 cannot do the cut and encode: its AudioFileClip always decodes to two channels
    # (FFMPEG_AudioReader's nchannels defaults to 2 and AudioFileClip does not pass the source's), so
    # 5.1 would be down-mixed and mono doubled. ffmpeg cuts the span (input-side -ss/-t, sample
    # accurate because the audio is decoded), keeps the channel layout, encodes AAC, and muxes it
    # with the video stream copied bit for bit, in one pass.
    with atomic_path(out) as tmp:
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(video),
            "-ss",
            f"{start:.6f}",
            "-t",
            f"{duration:.6f}",
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(tmp),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise VidSynthError(
                f"ffmpeg could not add the audio of {source} to {video}: {result.stderr.strip()[-500:]}. "
                "Check that both files play; re-encode them with ffmpeg if not."
            )
    logger.info("Added %.3f s of audio from %s (from %.3f s) to %s", duration, source, start, out)
    return True


def _sidecar_start(video: Path) -> float:
    """``source.start`` from the sidecar JSON next to the edited video, 0 when there is none."""
    sidecar = video.with_suffix(".json")
    if not sidecar.is_file():
        return 0.0
    try:
        start = float(json.loads(sidecar.read_text())["source"]["start"])
    except (ValueError, KeyError, TypeError) as err:
        raise VidSynthError(
            f"Cannot read source.start from {sidecar} ({err}). Fix or remove the sidecar, or pass --start."
        ) from err
    logger.info("Audio span starts at %.3f s (source.start of %s)", start, sidecar)
    return start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Put the source's sound back on an edited video.")
    parser.add_argument("--video", required=True, help="edited (silent) video")
    parser.add_argument("--source", required=True, help="video whose audio to use")
    parser.add_argument("--out", required=True, help="output MP4 (may equal --video)")
    parser.add_argument("--start", type=float, help="seconds into the source (default: sidecar source.start, else 0)")
    parser.add_argument("--duration", type=float, help="seconds of audio (default: the edited video's length)")
    args = parser.parse_args(argv)
    video = _require_file(args.video, "Edited video")
    start = _sidecar_start(video) if args.start is None else args.start
    added = add_audio(video, args.source, args.out, start, args.duration)
    if added:
        print(f"{args.out}: video of {args.video} with audio of {args.source} from {start:.3f} s")
    else:
        print(f"{args.out}: video of {args.video} without audio ({args.source} has none in that span)")


if __name__ == "__main__":
    run_main(main)
