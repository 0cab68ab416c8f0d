"""Editing whole clips: spans by time or frames, every frame at the source rate with its sound, windows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from vidsynth import inference
from vidsynth.cli import run_main
from vidsynth.config.inference import InferenceConfig
from vidsynth.editing.request import resolve_request
from vidsynth.media import writers
from vidsynth.media.scene import SAMPLE_RATE, render_scene
from vidsynth.media.video import probe_video
from vidsynth.pipelines import TuneAVideoPipeline

FPS, SIZE = 8.0, 32
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """3 s at 8 fps (24 frames) with a mono tone."""
    return render_scene(tmp_path_factory.mktemp("long") / "long.mp4", 24, 48, 48, FPS, audio_channels=1)


def _audio_seconds(path: Path) -> float:
    command = [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE)]
    raw = subprocess.run([*command, "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return len(raw) / 2 / SAMPLE_RATE


def _args(tiny_sd, clip: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--base", str(tiny_sd), "--video", str(clip), "--prompt", "a ball", "--steps", "1", "--inversion-steps", "1",
        "--out", str(out), f"width={SIZE}", f"height={SIZE}", *extra,
    ]  # fmt: skip


def test_a_time_span_is_every_frame_at_the_source_rate_with_exactly_its_sound(tiny_sd, long_clip, tmp_path):
    out = tmp_path / "out"
    inference.main(_args(tiny_sd, long_clip, out, "--start", "0.5", "--end", "2.25", "--stride", "1"))
    info = probe_video(out / "a-ball.mp4")
    assert (info.num_frames, info.fps) == (14, FPS)  # frames 4..17: every frame of 0.5-2.25 s
    assert abs(_audio_seconds(out / "a-ball.mp4") - 14 / FPS) <= 1 / FPS
    sidecar = json.loads((out / "a-ball.json").read_text())
    assert (
        sidecar["source"]["frame_indices"] == {"start": 4, "stop": 18, "stride": 1}
        and sidecar["source"]["start"] == 0.5
    )
    assert sidecar["window"] is None  # 14 frames fit in one window (the tuning default, 24): the ordinary path


def test_frames_all_edits_the_rest_of_the_clip_in_windows(tiny_sd, long_clip, tmp_path, monkeypatch):
    windows = []
    real_call = TuneAVideoPipeline.__call__

    def spy(self, *args, **kwargs):
        windows.append((kwargs["window"], kwargs["window_overlap"]))
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(TuneAVideoPipeline, "__call__", spy)
    monkeypatch.setattr(writers, "GIF_MAX_FRAMES", 8)
    out = tmp_path / "out"
    inference.main(_args(tiny_sd, long_clip, out, "--frames", "all", "--stride", "1", "--window", "6"))
    assert windows == [(6, 1)]  # 6 // 4 = 1 frame of overlap by default
    assert probe_video(out / "a-ball.mp4").num_frames == 24
    sidecar = json.loads((out / "a-ball.json").read_text())
    assert sidecar["window"] == {"frames": 6, "overlap": 1}
    assert sidecar["grid_gif"] == {"every_nth_frame": 3, "fps": FPS / 3}
    with Image.open(out / "grid.gif") as gif:
        assert gif.n_frames <= 8 and gif.info["duration"] == pytest.approx(1000 * 3 / FPS, abs=10)


def test_the_inversion_cache_is_keyed_by_the_windows(tiny_sd, long_clip, tmp_path):
    def cache(**options):
        config = InferenceConfig(base=str(tiny_sd), video=str(long_clip), prompts=["x"], device="cpu", **options)
        return resolve_request(config).inversion_cache

    base = {"num_frames": "all", "stride": 1, "cache_dir": str(tmp_path)}
    keys = {cache(**base, window=6), cache(**base, window=8), cache(**base, window=6, window_overlap=2)}
    assert len(keys) == 3
    assert cache(**base, window=6) == cache(**base, window=6, window_overlap=1)  # the default overlap, spelled out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "5"], "--start 5 s is outside long.mp4, which lasts 3.000 s"),
        (["--start", "2", "--end", "1"], "--end (1 s) is not after --start (2 s)"),
        (["--end", "9"], "--end 9 s is outside long.mp4"),
        (["--frames", "6", "--window", "8"], "window 8 is larger than the span's 6 frames"),
        (["--window", "4", "--window-overlap", "4"], "window overlap 4 must be at least 0 and less than the window"),
        (["--frames", "sometimes"], None),
    ],
)
def test_bad_spans_and_windows_exit_non_zero_and_write_nothing(tiny_sd, long_clip, tmp_path, caplog, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main(_args(tiny_sd, long_clip, tmp_path / "out", *extra)))
    assert exit_info.value.code == 2
    if message:
        assert message in caplog.text
    assert os.listdir(tmp_path) == []


def test_frames_all_on_the_command_line(tiny_sd, long_clip, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = _args(tiny_sd, long_clip, tmp_path / "out", "--frames", "all", "--stride", "3", "--format", "mp4")
    result = subprocess.run([sys.executable, "inference.py", *args], capture_output=True, text=True, env=env,
                            cwd=Path(inference.__file__).parents[1])  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert probe_video(tmp_path / "out" / "a-ball.mp4").num_frames == 8  # frames 0, 3, ..., 21
    assert "Editing 8 frames of long.mp4 (0.00-3.00 s from frame 0, stride 3: 2.667 fps)" in result.stderr
    assert not np.isnan(probe_video(tmp_path / "out" / "a-ball.mp4").fps)
