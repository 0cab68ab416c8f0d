"""The README's main command: the offline demo, and the Jetson profile it points users to."""

import subprocess
import sys
from pathlib import Path

from vidsynth.config import InferenceConfig, load_config
from vidsynth.video import probe_video

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_offline_and_writes_playable_files_with_sound(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidsynth.demo",
            "--out",
            str(out),
            "--train-steps",
            "2",
            "--steps",
            "2",
            "--model",
            str(tmp_path / "no-such-model"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RANDOM weights" in result.stderr + result.stdout
    assert "Time per stage" in result.stdout
    (edits,) = out.glob("edits-*")
    videos = sorted(edits.glob("*.mp4"))
    assert len(videos) == 2 and (edits / "grid.gif").is_file()
    for video in videos:
        info = probe_video(video)
        assert info.has_audio and info.num_frames == 8 and (info.width, info.height) == (128, 128)
        assert video.with_suffix(".json").is_file()
    assert (out / "run" / "tuned_unet.safetensors").is_file()


def test_jetson_profile_loads_and_fits_a_small_board():
    cfg = load_config(InferenceConfig, [ROOT / "configs" / "jetson.yaml"])
    assert cfg.dtype == "fp16" and cfg.device == "cuda" and cfg.vae_slicing
    assert (cfg.width, cfg.height, cfg.frames) == (256, 256, 8)
    assert 20 <= cfg.steps <= 25 and 20 <= cfg.inversion_steps <= 25
