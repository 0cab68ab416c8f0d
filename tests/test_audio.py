"""The source's sound on edited videos: written with the frames in one encode, or put on an existing MP4.

Checked on real files: channel layouts (mono, stereo, 5.1), the span's offset to the sample, exact
frame rates, copied video streams, silent sources, and the standalone CLI step.
"""

import ast
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from postprocess.add_audio import add_audio, main
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import SAMPLE_RATE, render_frames, render_scene
from vidsynth.media.sound import SoundSpan, sound_track
from vidsynth.media.video import probe_video, read_frames
from vidsynth.media.writers import write_grid_video, write_video

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
REPO = Path(__file__).resolve().parents[1]
FPS = 8.0
LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "5.1": 6}


def _streams_text(path: Path) -> str:
    """``ffmpeg -i``'s description of the file (no ffprobe in imageio-ffmpeg)."""
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def _streams(path: Path) -> dict[str, str]:
    """The codec line of each stream kind (the last one of a kind)."""
    return dict(re.findall(r"Stream #\S+: (Video|Audio): (.*)", _streams_text(path)))


def _audio(path: Path) -> np.ndarray:
    """Decoded audio as float32 (N, channels), channel count from the stream's layout."""
    layout = re.search(r"\d+ Hz, ([^,]+),", _streams(path)["Audio"])[1]
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, LAYOUT_CHANNELS[layout])


def _video_md5(path: Path) -> str:
    """MD5 of the video stream's packets: equal only if the stream was copied, not re-encoded."""
    command = [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def _dominant_hz(samples: np.ndarray) -> np.ndarray:
    """Loudest frequency of each channel of (N, C) samples."""
    spectrum = np.abs(np.fft.rfft(samples, axis=0))
    return np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[spectrum.argmax(axis=0)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A silent 1 s edited video, 3 s sources with 0/1/2/6 channels, and one whose tone jumps at 1.5 s."""
    root = tmp_path_factory.mktemp("audio")
    files = {"edited": render_scene(root / "edited.mp4", 8, 64, 64, FPS, audio_channels=0, seed=1)}
    for channels in (0, 1, 2, 6):
        files[channels] = render_scene(root / f"src{channels}.mp4", 24, 64, 64, FPS, audio_channels=channels)
    jump = "aevalsrc=0.3*sin(2*PI*t*if(lt(t\\,1.5)\\,440\\,880)):s=44100:d=3"
    files["jump"] = root / "jump.mp4"
    subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(files[0]), "-f", "lavfi", "-i", jump]
        + ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(files["jump"])],
        check=True,
    )
    return files


@pytest.mark.parametrize(("channels", "layout"), [(1, "mono"), (2, "stereo"), (6, "5.1")])
def test_add_audio_keeps_the_channel_layout_and_copies_video(media, tmp_path, channels, layout):
    out = tmp_path / "final.mp4"
    assert add_audio(media["edited"], media[channels], out, start=1.0) is True
    streams = _streams(out)
    assert streams["Video"].startswith("h264") and streams["Audio"].startswith("aac")
    assert f"Hz, {layout}," in streams["Audio"]
    audio = _audio(out)
    assert audio.shape[1] == channels
    assert abs(len(audio) / SAMPLE_RATE - 1.0) <= 1 / FPS  # the video lasts 8 frames at 8 fps
    hz = _dominant_hz(audio)
    for c in range(channels):
        if layout == "5.1" and c == 3:
            continue  # the LFE channel: AAC keeps only its low frequencies
        assert hz[c] == pytest.approx(440 * (c + 1), abs=3)
    assert _video_md5(out) == _video_md5(media["edited"])


@pytest.mark.parametrize(("start", "hz"), [(0.0, 440), (2.0, 880)])
def test_audio_span_starts_at_the_given_offset(media, tmp_path, start, hz):
    out = add_audio(media["edited"], media["jump"], tmp_path / "o.mp4", start=start) and tmp_path / "o.mp4"
    audio = _audio(out)
    assert abs(len(audio) / SAMPLE_RATE - 1.0) <= 1 / FPS
    assert _dominant_hz(audio)[0] == pytest.approx(hz, abs=3)


def test_span_past_the_end_keeps_what_there_is(media, tmp_path):
    assert add_audio(media["edited"], media[2], tmp_path / "o.mp4", start=2.5)
    assert abs(len(_audio(tmp_path / "o.mp4")) / SAMPLE_RATE - 0.5) <= 1 / FPS


def test_span_after_the_end_writes_the_video_alone(media, tmp_path):
    assert add_audio(media["edited"], media[2], tmp_path / "o.mp4", start=5.0) is False
    assert "Audio" not in _streams(tmp_path / "o.mp4")


def test_explicit_duration(media, tmp_path):
    assert add_audio(media["edited"], media[1], tmp_path / "o.mp4", start=0.0, duration=0.5)
    assert abs(len(_audio(tmp_path / "o.mp4")) / SAMPLE_RATE - 0.5) <= 1 / FPS


def test_silent_source_writes_the_video_alone(media, tmp_path):
    out = tmp_path / "o.mp4"
    assert add_audio(media["edited"], media[0], out) is False
    assert "Audio" not in _streams(out)
    assert out.read_bytes() == media["edited"].read_bytes()


def test_in_place(media, tmp_path):
    video = tmp_path / "edited.mp4"
    video.write_bytes(media["edited"].read_bytes())
    assert add_audio(video, media[2], video) is True
    assert "Audio" in _streams(video) and _video_md5(video) == _video_md5(media["edited"])
    assert [p.name for p in tmp_path.iterdir()] == ["edited.mp4"]


def test_missing_files_raise(media, tmp_path):
    with pytest.raises(VidSynthError, match="not found") as err:
        add_audio(tmp_path / "nope.mp4", media[1], tmp_path / "o.mp4")
    assert "nope.mp4" in str(err.value)
    with pytest.raises(VidSynthError, match="Audio source not found"):
        add_audio(media["edited"], tmp_path / "gone.mp4", tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_main_takes_the_start_from_the_sidecar(media, tmp_path, capsys):
    video = tmp_path / "edited.mp4"
    video.write_bytes(media["edited"].read_bytes())
    (tmp_path / "edited.json").write_text(json.dumps({"video": "edited.mp4", "source": {"start": 2.0}}))
    main(["--video", str(video), "--source", str(media["jump"]), "--out", str(tmp_path / "final.mp4")])
    assert _dominant_hz(_audio(tmp_path / "final.mp4"))[0] == pytest.approx(880, abs=3)
    assert "final.mp4" in capsys.readouterr().out
    main(["--video", str(video), "--source", str(media["jump"]), "--out", str(tmp_path / "f0.mp4"), "--start", "0"])
    assert _dominant_hz(_audio(tmp_path / "f0.mp4"))[0] == pytest.approx(440, abs=3)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "postprocess.add_audio", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_cli_success_and_missing_file(media, tmp_path):
    out = tmp_path / "final.mp4"
    done = _cli("--video", str(media["edited"]), "--source", str(media[2]), "--out", str(out), "--start", "1")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and str(out) in done.stdout
    assert "stereo" in _streams(out)["Audio"]

    missing = tmp_path / "missing.mp4"
    failed = _cli("--video", str(media["edited"]), "--source", str(missing), "--out", str(tmp_path / "x.mp4"))
    assert failed.returncode == 2
    assert str(missing) in failed.stderr and "not found" in failed.stderr
    assert not (tmp_path / "x.mp4").exists()


# ---------------------------------------------------------------- sound written with the frames (one encode)


def _with_sound(writer, path, frames, fps, span: SoundSpan):
    """``writer`` (write_video or write_grid_video) with the span's sound, cut as outputs.py cuts it."""
    with sound_track(span) as track:
        return writer(path, frames, fps, sound=track)


def _jump_tone(start: float, num_samples: int) -> np.ndarray:
    """The fixture's jump source as an exact signal: samples from ``start`` s, 440 Hz before 1.5 s, 880 Hz after."""
    t = start + np.arange(num_samples) / SAMPLE_RATE  # (N,)
    return 0.3 * np.sin(2 * np.pi * t * np.where(t < 1.5, 440, 880))


@pytest.mark.parametrize(("channels", "layout"), [(1, "mono"), (2, "stereo"), (6, "5.1")])
def test_write_video_with_sound_keeps_the_channel_layout(media, tmp_path, channels, layout):
    frames = render_frames(8, 64, 48, seed=3)  # (F, H, W, 3)
    out = _with_sound(
        write_video, tmp_path / "edit.mp4", frames, FPS, SoundSpan(media[channels], start=1.0, duration=1.0)
    )
    streams = _streams(out)
    assert streams["Video"].startswith("h264") and f"Hz, {layout}," in streams["Audio"]
    audio = _audio(out)
    assert audio.shape[1] == channels and abs(len(audio) / SAMPLE_RATE - 1.0) <= 1 / FPS
    hz = _dominant_hz(audio)
    for c in range(channels):
        if layout == "5.1" and c == 3:
            continue  # the LFE channel: AAC keeps only its low frequencies
        assert hz[c] == pytest.approx(440 * (c + 1), abs=3)
    assert probe_video(out).num_frames == 8
    assert np.abs(read_frames(out, range(8)).astype(float) - frames).mean() < 4.0
    assert [p.name for p in tmp_path.iterdir()] == ["edit.mp4"]


@pytest.mark.parametrize("start", [1.0, 0.25])
def test_sound_span_starts_at_the_exact_sample(media, tmp_path, start):
    out = _with_sound(
        write_video, tmp_path / "o.mp4", render_frames(8, 64, 64), FPS, SoundSpan(media["jump"], start, 1.0)
    )
    audio = _audio(out)[:, 0]  # (N,) mono
    inner = slice(2048, len(audio) - 2048)  # away from the AAC frames at the ends

    def error(lag: int) -> float:
        expected = _jump_tone(start + lag / SAMPLE_RATE, len(audio))
        return float(np.sqrt(np.mean((audio[inner] - expected[inner]) ** 2)))

    errors = {lag: error(lag) for lag in range(-20, 21)}  # within a quarter period of 880 Hz
    assert min(errors, key=errors.get) == 0  # off by one sample would match a shifted tone better
    assert errors[0] < 0.03  # and it is the tone itself (amplitude 0.3), not noise


def test_sound_keeps_an_odd_frame_rate(media, tmp_path):
    fps = 29.97 / 2  # rounded to two decimals (14.99) its frames would drift from the sound
    out = _with_sound(
        write_video, tmp_path / "o.mp4", render_frames(10, 64, 48), fps, SoundSpan(media[2], 0.0, 10 / fps)
    )
    info = probe_video(out)
    assert info.num_frames == 10 and info.fps == pytest.approx(fps, abs=1e-3)
    assert abs(len(_audio(out)) / SAMPLE_RATE - 10 / fps) <= 1 / fps


def test_grid_video_with_sound(media, tmp_path):
    columns = [("source", render_frames(8, 32, 32)), ("edit", render_frames(8, 32, 32, seed=1))]
    out = _with_sound(write_grid_video, tmp_path / "grid.mp4", columns, FPS, SoundSpan(media[6], 0.0, 1.0))
    assert "Hz, 5.1," in _streams(out)["Audio"] and probe_video(out).width == 64


def test_silent_source_gives_a_silent_video_and_a_notice(media, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vidsynth")
    out = _with_sound(write_video, tmp_path / "o.mp4", render_frames(8, 32, 32), FPS, SoundSpan(media[0], 0.0, 1.0))
    assert "Audio" not in _streams(out) and probe_video(out).num_frames == 8
    notice = [r for r in caplog.records if "no audio track" in r.getMessage()]
    assert notice and notice[0].levelno == logging.INFO


def test_span_after_the_end_gives_a_silent_video_and_a_warning(media, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vidsynth")
    out = _with_sound(write_video, tmp_path / "o.mp4", render_frames(8, 32, 32), FPS, SoundSpan(media[2], 5.0, 1.0))
    assert "Audio" not in _streams(out)
    assert any(r.levelno == logging.WARNING and "after the end" in r.getMessage() for r in caplog.records)


def test_bad_spans_and_missing_sources_raise_before_writing(media, tmp_path):
    for start, duration in [(-1.0, 1.0), (0.0, 0.0), (float("nan"), 1.0), (0.0, float("inf"))]:
        with pytest.raises(VidSynthError, match="sound span needs"):
            SoundSpan(media[2], start, duration)
    with pytest.raises(VidSynthError, match="Audio source not found") as err:
        _with_sound(
            write_video, tmp_path / "o.mp4", render_frames(4, 32, 32), FPS, SoundSpan(tmp_path / "gone.mp4", 0, 1)
        )
    assert "gone.mp4" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_add_audio_replaces_sound_the_video_already_has(media, tmp_path):
    out = tmp_path / "o.mp4"
    assert add_audio(media[2], media[1], out, start=0.0)  # stereo video, mono source
    assert len(re.findall(r"Stream #\S+: Audio", _streams_text(out))) == 1
    assert "Hz, mono," in _streams(out)["Audio"] and _video_md5(out) == _video_md5(media[2])


def test_the_library_never_imports_postprocess():
    """postprocess is the CLI step on top of vidsynth; the dependency goes one way."""
    for path in (REPO / "vidsynth").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "postprocess" for n in names), f"{path} imports postprocess"
