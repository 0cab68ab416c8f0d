"""A small procedurally rendered clip with a sound track, so tests and the offline demo need no footage.

The scene, a ball flying in an arc over a ground strip under a gradient sky, changes visibly from
frame to frame (what a video model must keep consistent) and is smooth enough that codec losses stay
small. Each audio channel carries its own sine tone (``tone_hz`` times the channel number), so a test
can tell channels apart and notice a down-mix.
"""

import tempfile
import wave
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from vidsynth.atomic import atomic_path

SAMPLE_RATE = 44_100
SUPPORTED_CHANNELS = (0, 1, 2, 6)


def render_frames(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Render the scene as uint8 (F, H, W, 3); the seed picks the colours and the flight path."""
    rng = np.random.default_rng(seed)
    sky_top, sky_bottom = rng.uniform([20, 60, 140], [60, 110, 200]), rng.uniform([150, 190, 220], [200, 225, 250])
    ground = rng.uniform([40, 110, 30], [90, 160, 60])
    ball = rng.uniform([200, 30, 20], [255, 120, 60])
    ground_top = int(height * 0.75)
    radius = max(2.0, min(width, height) / 8)

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W) each
    t = (yy / max(height - 1, 1))[..., None]  # (H, W, 1) 0 at top, 1 at bottom
    background = (1 - t) * sky_top + t * sky_bottom  # (H, W, 3)
    background[ground_top:] = ground

    phase = rng.uniform(0, 0.3)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        s = phase + 0.7 * i / max(num_frames - 1, 1)  # progress of the flight, in [0, 1]
        cx = radius + s * (width - 2 * radius)
        cy = ground_top - radius - 4 * s * (1 - s) * (ground_top - 2 * radius)  # parabolic arc
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2  # (H, W)
        frame = background.copy()
        frame[inside] = ball
        frames[i] = frame.round().astype(np.uint8)
    return frames


def render_tone(duration: float, channels: int, tone_hz: float = 440.0) -> np.ndarray:
    """int16 samples (N, channels); channel c (0-based) sounds at ``tone_hz * (c + 1)``."""
    t = np.arange(round(duration * SAMPLE_RATE)) / SAMPLE_RATE  # (N,)
    freqs = tone_hz * np.arange(1, channels + 1)  # (C,)
    samples = 0.3 * np.sin(2 * np.pi * t[:, None] * freqs[None, :])  # (N, C)
    return (samples * 32767).astype(np.int16)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """Write int16 (N, C) samples as PCM WAV (ffmpeg reads 6 unlabelled channels as 5.1)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.tobytes())


def render_scene(
    path: str | Path,
    num_frames: int = 24,
    width: int = 128,
    height: int = 128,
    fps: float = 8.0,
    audio_channels: int = 1,
    tone_hz: float = 440.0,
    seed: int = 0,
) -> Path:
    """Write the scene as an H.264 MP4 with an AAC tone track as long as the video (none if 0 channels)."""
    if audio_channels not in SUPPORTED_CHANNELS:
        raise ValueError(f"audio_channels must be one of {SUPPORTED_CHANNELS}, got {audio_channels}.")
    if num_frames < 1 or width % 2 or height % 2 or width < 2 or height < 2:
        raise ValueError(f"Need at least one frame and an even size, got {num_frames} frames at {width}x{height}.")
    frames = render_frames(num_frames, width, height, seed)
    path = Path(path)
    with tempfile.TemporaryDirectory() as scratch, atomic_path(path) as tmp:
        audio = None
        if audio_channels:
            audio = Path(scratch) / "tone.wav"
            _write_wav(audio, render_tone(num_frames / fps, audio_channels, tone_hz))
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=Fraction(fps).limit_denominator(100_000),
            codec="libx264",
            quality=None,
            output_params=["-crf", "18"],
            macro_block_size=1,
            ffmpeg_log_level="error",
            audio_path=None if audio is None else str(audio),
            audio_codec="aac",
        )
        writer.send(None)  # start ffmpeg
        for frame in frames:
            writer.send(frame)
        writer.close()
    return path
