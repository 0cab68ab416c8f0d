"""The frame workflow: a video to numbered PNGs and back, for editing frames with other tools.

  python -m vidsynth.frames extract clip.mp4 frames/ [--fps N] [--size WxH]
  python -m vidsynth.frames assemble frames/ out.mp4 [--fps N] [--audio-from clip.mp4]

``extract`` writes frame_00000.png ... plus ``frames.json`` (rate, source, count, size, audio), so
``assemble`` can restore the timing on its own and the round trip keeps count, size and rate.
"""

import argparse
import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.media.sound import SoundSpan, sound_track
from vidsynth.media.video import probe_video, read_frames
from vidsynth.media.writers import write_json, write_video

logger = logging.getLogger(__name__)

MANIFEST = "frames.json"
_FRAME_NAME = re.compile(r"frame_(\d+)\.png")
_CHUNK = 32  # frames decoded at once: bounds memory on long clips


def resample_indices(num_frames: int, source_fps: float, fps: float) -> list[int]:
    """Source frames nearest to t = k / fps for every t inside the clip (all frames when fps == source_fps)."""
    count = math.ceil(num_frames / source_fps * fps - 1e-9)
    return [min(num_frames - 1, math.floor(k * source_fps / fps + 0.5)) for k in range(count)]


def _parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or min(int(match[1]), int(match[2])) <= 0:
        raise VidSynthError(f"--size must look like WIDTHxHEIGHT, e.g. 512x512, got {text!r}. Fix it.")
    return int(match[1]), int(match[2])


def extract(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """Write the frames of ``video`` as numbered PNGs plus frames.json into ``out_dir`` (new or empty).

    The folder appears complete or not at all: frames go to a hidden sibling folder that is renamed.
    """
    info = probe_video(video)
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise VidSynthError(f"{out_dir} already exists and is not an empty folder. Choose a new folder or empty it.")
    if fps is not None and not fps > 0:
        raise VidSynthError(f"--fps must be positive, got {fps}. Fix it.")
    out_fps = info.fps if fps is None else fps
    indices = resample_indices(info.num_frames, info.fps, out_fps)
    width, height = size if size is not None else (info.width, info.height)

    with atomic_path(out_dir, folder=True) as tmp:
        with tqdm(total=len(indices), desc="extract", unit="frame") as bar:
            for offset in range(0, len(indices), _CHUNK):
                chunk = read_frames(info.path, indices[offset : offset + _CHUNK], width, height)  # (f, H, W, 3)
                for i, frame in enumerate(chunk, start=offset):
                    Image.fromarray(frame).save(tmp / f"frame_{i:05d}.png")
                bar.update(len(chunk))
        manifest = {
            "fps": out_fps,
            "source": info.path,
            "source_fps": info.fps,
            "frame_indices": indices,
            "count": len(indices),
            "width": width,
            "height": height,
            "has_audio": info.has_audio,
        }
        write_json(tmp / MANIFEST, manifest)
    return out_dir


def _frame_files(frames_dir: Path) -> list[Path]:
    numbered = [(int(m[1]), p) for p in frames_dir.iterdir() if (m := _FRAME_NAME.fullmatch(p.name))]
    return [p for _, p in sorted(numbered)]


def assemble(
    frames_dir: str | os.PathLike,
    out: str | os.PathLike,
    fps: float | None = None,
    audio_from: str | os.PathLike | None = None,
) -> Path:
    """Write the numbered PNGs of ``frames_dir`` as an MP4 at ``fps`` (default: frames.json's).

    ``audio_from``: a video whose sound, from its start for as long as the frames last, is encoded
    with the frames in one pass (mono, stereo or 5.1 kept); a source without sound gives a silent MP4.
    """
    frames_dir = Path(frames_dir).expanduser().absolute()
    if not frames_dir.is_dir():
        raise VidSynthError(f"Frames folder not found: {frames_dir}. Point it at the folder extract wrote.")
    files = _frame_files(frames_dir)
    if not files:
        raise VidSynthError(f"No frame_NNNNN.png files in {frames_dir}. Point it at the folder extract wrote.")
    if fps is None:
        manifest = frames_dir / MANIFEST
        if not manifest.is_file():
            raise VidSynthError(f"No {MANIFEST} in {frames_dir} to take the frame rate from. Pass --fps.")
        fps = float(json.loads(manifest.read_text())["fps"])
    if not fps > 0:
        raise VidSynthError(f"--fps must be positive, got {fps}. Fix it.")

    try:
        images = [np.asarray(Image.open(p).convert("RGB")) for p in tqdm(files, desc="read", unit="frame")]
    except OSError as err:
        raise VidSynthError(f"Cannot read a frame in {frames_dir} as an image ({err}). Re-export it as PNG.") from err
    if len(sizes := {image.shape for image in images}) > 1:
        found = sorted(f"{w}x{h}" for h, w, _ in sizes)
        raise VidSynthError(f"The frames in {frames_dir} differ in size ({', '.join(found)}). Give them all one size.")
    frames = np.stack(images)  # (F, H, W, 3)
    _, height, width, _ = frames.shape
    if width % 2 or height % 2:
        raise VidSynthError(f"Frames are {width}x{height}; H.264 needs even sizes. Resize them (e.g. extract --size).")

    span = None if audio_from is None else SoundSpan(audio_from, start=0.0, duration=len(frames) / fps)
    with sound_track(span) as track:
        return write_video(Path(out).expanduser().absolute(), frames, fps, track)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Video to numbered PNG frames and back.")
    commands = parser.add_subparsers(dest="command", required=True)
    ext = commands.add_parser("extract", help="write frame_00000.png ... and frames.json")
    ext.add_argument("video")
    ext.add_argument("out_dir")
    ext.add_argument("--fps", type=float, help="resample to this rate (nearest frames); default: the source's")
    ext.add_argument("--size", help="resize to WIDTHxHEIGHT, e.g. 512x512")
    asm = commands.add_parser("assemble", help="write the PNGs as an MP4")
    asm.add_argument("frames_dir")
    asm.add_argument("out")
    asm.add_argument("--fps", type=float, help="frame rate; default: frames.json's")
    asm.add_argument("--audio-from", help="video whose audio (from its start) to add")
    args = parser.parse_args(argv)

    if args.command == "extract":
        size = _parse_size(args.size) if args.size else None
        out_dir = extract(args.video, args.out_dir, args.fps, size)
        manifest = json.loads((out_dir / MANIFEST).read_text())
        print(
            f"{out_dir}: {manifest['count']} frames, {manifest['width']}x{manifest['height']}, {manifest['fps']:g} fps"
        )
    else:
        out = assemble(args.frames_dir, args.out, args.fps, args.audio_from)
        info = probe_video(out)
        sound = "with audio" if info.has_audio else "no audio"
        print(f"{out}: {info.num_frames} frames, {info.width}x{info.height}, {info.fps:g} fps, {sound}")
