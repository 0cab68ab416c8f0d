"""The shipped low-memory profile for animating (configs/animate-jetson.yaml) loads and runs.

Its memory settings are the issue's (fp16, model offload, forward chunking, decoding 1-2 frames at a
time, 14 frames at a small size); offload needs a GPU, so on the CPU it runs with those two overridden,
on the tiny random SVD, with everything else the profile's.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidsynth import animate
from vidsynth.config import AnimateConfig, load_config
from vidsynth.media.video import probe_video

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "configs" / "animate-jetson.yaml"


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # --profile NAME is configs/NAME.yaml in the folder the command runs in


def test_the_jetson_profile_sets_the_low_memory_settings():
    config = load_config(AnimateConfig, [PROFILE])
    assert (config.device, config.dtype, config.offload, config.forward_chunking) == ("cuda", "fp16", "model", True)
    assert config.decode_chunk_size in (1, 2)
    assert config.num_frames == 14
    assert config.width is None and config.height % 8 == 0  # the width from the input's aspect ratio; the VAE's 8
    assert config.height < 576  # smaller than SVD's native frame
    assert config.num_inference_steps <= AnimateConfig.num_inference_steps


def test_the_jetson_profile_runs_on_the_cpu_with_offload_and_dtype_overridden(tiny_svd, tmp_path, in_repo, monkeypatch):
    from vidsynth.animation import pipeline

    placed = []
    real_place = pipeline.place

    def spy(pipe, device, offload, forward_chunking):
        placed.append((device.type, offload, forward_chunking, pipe.unet.dtype))
        real_place(pipe, device, offload, forward_chunking)

    monkeypatch.setattr(pipeline, "place", spy)
    still = tmp_path / "still.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 64, 3), dtype=np.uint8)).save(still)
    out = tmp_path / "out"
    overrides = ["device=cpu", "offload=none", "dtype=fp32", "width=64", "height=32", "steps=2"]
    animate.main(
        ["--profile", "animate-jetson", "--image", str(still), "--model", str(tiny_svd), "--out", str(out), *overrides]
    )
    profile = load_config(AnimateConfig, [PROFILE])
    assert placed == [("cpu", "none", True, torch.float32)]  # the profile's forward chunking
    sidecar = json.loads((out / "still.json").read_text())
    assert sidecar["decode_chunk_size"] == profile.decode_chunk_size
    assert sidecar["num_frames"] == profile.num_frames == 14  # the tiny model makes 4 at once: chained segments
    info = probe_video(out / "still.mp4")
    assert (info.num_frames, info.width, info.height) == (14, 64, 32)


def test_a_length_flag_replaces_the_profiles_frame_count():
    def resolved(*flags: str):
        return animate.resolve_config(animate.parse_args(["--profile", "animate-jetson", *flags]))

    seconds = resolved("--image", "still.png", "--seconds", "6")
    assert (seconds.num_frames, seconds.seconds) == (None, 6.0)
    extend = resolved("--video", "clip.mp4", "--extend", "2")
    assert (extend.num_frames, extend.extend) == (None, 2.0)
    frames = resolved("--image", "still.png", "--frames", "30", "seconds=3")
    assert (frames.num_frames, frames.seconds) == (30, None)
    assert resolved("--image", "still.png").num_frames == 14  # the profile's, when no length is given
