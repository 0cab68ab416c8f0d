"""The README's main command: the offline demo, and the editing profiles it points users to."""

import shlex
import subprocess
import sys
from pathlib import Path

from vidsynth.media.scene import render_scene
from vidsynth.media.video import probe_video

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
        assert info.has_audio and (info.num_frames, info.fps) == (16, 8.0)  # the whole scene at its frame rate
        assert (info.width, info.height) == (128, 128)
        assert video.with_suffix(".json").is_file()
    assert (out / "run" / "tuned_unet.safetensors").is_file()


def test_every_shipped_editing_profile_resolves_into_a_request(tiny_sd, tmp_path):
    """A profile with a typo'd key, a size the VAE cannot take or more frames than a short clip has fails here."""
    from vidsynth import inference
    from vidsynth.editing.request import resolve_request

    clip = render_scene(tmp_path / "clip.mp4", 24, 64, 48, 8.0, audio_channels=0)
    for profile in ("jetson",):
        argv = ["--profile", profile, "--device", "cpu", "--base", str(tiny_sd), "--video", str(clip), "--prompt", "x"]
        request = resolve_request(inference.resolve_config(inference.parse_args(argv)))
        assert request.device.type == "cpu"  # flags win over the profile
        assert request.clip.num_frames <= 24 and request.clip.width % 8 == request.clip.height % 8 == 0


def test_the_demo_prints_each_stage_command_pasteable_with_its_prompts_quoted(caplog):
    """A stage's logged command splits (as a shell would) back into the very words it ran, prompts whole."""
    import logging

    from vidsynth.demo import PROMPTS, stage

    words = ["-c", "", "--prompt", PROMPTS[0], "--prompt", PROMPTS[1]]
    timings = {}
    with caplog.at_level(logging.INFO, logger="vidsynth.demo"):
        stage("edit", timings, [sys.executable, *words])
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("edit: ")]
    assert shlex.split(line.removeprefix("edit: ")) == ["python", *words]
    assert set(timings) == {"edit"}
