"""Put the source's sound back on an edited video that is already written (the standalone step).

The video stream is copied untouched; the sound is cut and encoded by :mod:`vidsynth.media.sound`, which
keeps mono, stereo or 5.1. New results get their sound while they are encoded, from
``vidsynth.media.writers.write_video(..., sound=SoundSpan(...))``; this is for videos edited elsewhere or earlier.

Usage: python -m postprocess.add_audio --video edited.mp4 --source clip.mp4 --out final.mp4 [--start S] [--duration D]
Without --start, ``source.start`` of the sidecar ``edited.json`` is used when present, else 0.
"""

import argparse
import json
import logging
import os
from pathlib import Path

from vidsynth.cli import run_main
from vidsynth.errors import VidSynthError
from vidsynth.media.sound import SoundSpan, add_sound, require_file
from vidsynth.media.video import probe_video

logger = logging.getLogger(__name__)


def add_audio(
    video: str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    start: float = 0.0,
    duration: float | None = None,
) -> bool:
    """Put ``source``'s sound from ``start`` for ``duration`` seconds (default: the video's length) on ``video``.

    Writes ``out`` (which may be ``video``); returns False, having written the video alone, when the
    source has no sound in that span.
    """
    video = require_file(video, "Edited video")
    if duration is None:
        info = probe_video(video)
        duration = info.num_frames / info.fps
    return add_sound(video, SoundSpan(source, start, duration), out)


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
    video = require_file(args.video, "Edited video")
    start = _sidecar_start(video) if args.start is None else args.start
    added = add_audio(video, args.source, args.out, start, args.duration)
    if added:
        print(f"{args.out}: video of {args.video} with audio of {args.source} from {start:.3f} s")
    else:
        print(f"{args.out}: video of {args.video} without audio ({args.source} has none in that span)")


if __name__ == "__main__":
    run_main(main)
