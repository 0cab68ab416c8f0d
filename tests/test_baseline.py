"""The per-frame img2img baseline on the tiny checkpoint: shapes, seeding, strength, and its CLI."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from vidsynth import inference
from vidsynth.cli import run_main
from vidsynth.config import load_config
from vidsynth.config.inference import InferenceConfig
from vidsynth.editing.baseline import denoising_steps, load_img2img_pipeline, render_img2img
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.video import probe_video, read_clip
from vidsynth.pipelines import loading

REPO = Path(__file__).resolve().parents[1]
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

SIZE = 32
FRAMES = 4
STEPS = 4  # DDIM steps; strength 0.5 runs 2 of them
SEED = 7


@pytest.fixture(scope="module")
def img2img(tiny_sd):
    return load_img2img_pipeline(tiny_sd)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=6, width=SIZE, height=SIZE, fps=8.0)
    return read_clip(path, FRAMES, SIZE, SIZE)


def _render(pipe, clip, **kwargs) -> np.ndarray:
    options = {"strength": 0.5, "num_inference_steps": STEPS, "guidance_scale": 7.5, "seed": SEED, **kwargs}
    return render_img2img(pipe, clip.pixels, ["a red ball"], **options)[0]


def test_output_shape_range_and_scheduler(img2img, clip):
    video = _render(img2img, clip)
    assert video.shape == (3, FRAMES, SIZE, SIZE)
    assert video.dtype == np.float32
    assert 0.0 <= video.min() and video.max() <= 1.0
    assert video.std() > 0.01  # an image, not a constant


def test_img2img_samples_with_ddim_whatever_the_model_folder_names(tiny_sd, tmp_path):
    """SD folders name PNDM; the baseline must sample with DDIM like the main method."""
    folder = shutil.copytree(tiny_sd, tmp_path / "pndm-sd")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "scheduler": ["diffusers", "PNDMScheduler"]}))
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({**config, "_class_name": "PNDMScheduler"}))
    assert type(load_img2img_pipeline(folder).scheduler).__name__ == "DDIMScheduler"


def test_same_seed_identical_and_batch_size_independent(img2img, clip):
    first = _render(img2img, clip, batch_size=4)
    assert np.array_equal(first, _render(img2img, clip, batch_size=4))
    # Each frame has its own generator, so batching (here 3 + 1 frames) changes nothing beyond float rounding.
    np.testing.assert_allclose(_render(img2img, clip, batch_size=3), first, atol=1e-4)
    assert np.abs(_render(img2img, clip, seed=SEED + 1) - first).mean() > 1e-3


def test_every_frame_gets_the_same_noise(img2img, clip):
    """Identical input frames with one seed give identical output frames (no per-frame randomness)."""
    pixels = clip.pixels[:1].expand(FRAMES, -1, -1, -1).clone()  # (F, 3, H, W), one frame repeated
    video = render_img2img(img2img, pixels, ["a red ball"], strength=0.5, num_inference_steps=STEPS, seed=SEED)[0]
    for i in range(1, FRAMES):
        np.testing.assert_allclose(video[:, i], video[:, 0], atol=1e-4)


def _vae_round_trip(pipe, clip) -> np.ndarray:
    """The source as the model sees it: each frame encoded (posterior sampled with the frame's seed) and decoded.

    The tiny VAE is random, so its round trip is far from the source pixels; what strength controls
    is the distance from this picture, which is what img2img at strength -> 0 returns.
    """
    with torch.no_grad():
        latents = torch.cat(
            [
                pipe.vae.encode(clip.pixels[i : i + 1]).latent_dist.sample(torch.Generator().manual_seed(SEED))
                for i in range(FRAMES)
            ]
        )  # (F, 4, h, w)
        decoded = pipe.vae.decode(latents).sample  # (F, 3, H, W)
    return (decoded / 2 + 0.5).clamp(0, 1).permute(1, 0, 2, 3).numpy()  # (3, F, H, W)


def test_strength_controls_how_far_from_the_source(img2img, clip):
    # 10 steps, so that strength 0.1 runs one of them.
    tiny, low, high = (_render(img2img, clip, strength=s, num_inference_steps=10) for s in (0.1, 0.3, 0.8))
    assert np.abs(low - high).mean() > 1e-2
    reference = _vae_round_trip(img2img, clip)
    tiny_distance, large_distance = np.abs(tiny - reference).mean(), np.abs(high - reference).mean()
    assert tiny_distance < 0.6 * large_distance, (tiny_distance, large_distance)


@pytest.mark.parametrize("steps", [1, 4, 10, 25, 50])
def test_denoising_steps_follow_diffusers(img2img, steps):
    """The step count check_strength relies on is the one diffusers' img2img pipeline runs (its get_timesteps)."""
    scheduler = type(img2img.scheduler).from_config(img2img.scheduler.config)  # the fixture's stays untouched
    scheduler.set_timesteps(steps)
    for strength in (0.05, 0.1, 0.29, 0.3, 0.5, 0.7, 0.99, 1.0):
        timesteps, count = StableDiffusionImg2ImgPipeline.get_timesteps(
            SimpleNamespace(scheduler=scheduler), steps, strength, "cpu"
        )
        assert denoising_steps(steps, strength) == count == len(timesteps), (steps, strength)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strength": 0.0}, "strength must be a number in (0, 1]"),
        ({"strength": 1.5}, "strength must be a number in (0, 1]"),
        ({"strength": float("nan")}, "strength must be a number in (0, 1]"),
        ({"strength": 0.2}, "leaves no denoising step"),  # int(4 × 0.2) = 0
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_arguments(img2img, clip, kwargs, message):
    with pytest.raises(VidSynthError, match=re.escape(message)):
        _render(img2img, clip, **kwargs)


def test_bad_pixels_and_prompts(img2img, clip):
    with pytest.raises(VidSynthError, match="pixels must be a tensor"):
        render_img2img(img2img, clip.pixels[0], ["a"], num_inference_steps=STEPS)
    with pytest.raises(VidSynthError, match="at least one prompt"):
        render_img2img(img2img, clip.pixels, [], num_inference_steps=STEPS)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(VidSynthError, match="cannot load the SD-1.x model"):
        load_img2img_pipeline(tmp_path / "nowhere")


# ---------------------------------------------------------------- inference.py --method img2img / --compare

CLI_SOURCE_FPS, CLI_STRIDE = 8.0, 2  # edited frames 0, 2, 4, 6 play at 4 fps


def _streams(path: Path) -> dict[str, str]:
    """The codec line of each stream kind from ``ffmpeg -i`` (imageio-ffmpeg has no ffprobe)."""
    info = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return dict(re.findall(r"Stream #\S+: (Video|Audio): (.*)", info))


@pytest.fixture(scope="module")
def cli_clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    return render_scene(folder / "clip.mp4", num_frames=8, width=64, height=64, fps=CLI_SOURCE_FPS, audio_channels=1)


def _cli_args(tiny_sd, clip: Path, *extra: str) -> list[str]:
    return [
        "--base", str(tiny_sd), "--video", str(clip), "--prompt", "a red ball", "--frames", str(FRAMES),
        "--steps", "4", "--seed", str(SEED), *extra, f"width={SIZE}", f"height={SIZE}",
    ]  # fmt: skip


def test_inference_img2img_writes_mp4_with_sound_sidecar_and_gif(tiny_sd, cli_clip, tmp_path):
    out = tmp_path / "out"
    argv = _cli_args(tiny_sd, cli_clip, "--method", "img2img", "--strength", "0.5", "--out", str(out))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "inference.py", *argv], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["a-red-ball.json", "a-red-ball.mp4", "config.yaml", "grid.gif"]
    assert str(out) in result.stdout.strip().splitlines()[-1]

    fps = CLI_SOURCE_FPS / CLI_STRIDE
    info = probe_video(out / "a-red-ball.mp4")
    assert (info.num_frames, info.fps, info.width, info.height) == (FRAMES, fps, SIZE, SIZE)
    assert "aac" in _streams(out / "a-red-ball.mp4")["Audio"]
    sidecar = json.loads((out / "a-red-ball.json").read_text())
    assert (sidecar["method"], sidecar["strength"], sidecar["model"]) == ("img2img", 0.5, str(tiny_sd))
    assert (sidecar["num_inference_steps"], sidecar["seed"], sidecar["num_frames"]) == (4, SEED, FRAMES)
    assert sidecar["source"]["frame_indices"] == {"start": 0, "stop": 8, "stride": 2}
    with Image.open(out / "grid.gif") as gif:
        assert gif.width == 2 * SIZE  # source | the prompt
    assert load_config(InferenceConfig, [out / "config.yaml"]).method == "img2img"


def test_inference_compare_renders_source_img2img_tuned_side_by_side(tiny_sd, cli_clip, tmp_path):
    out = tmp_path / "out"
    extra = ("--compare", "--strength", "0.75", "--inversion-steps", "2", "--out", str(out), f"cache_dir={tmp_path}")
    inference.main(_cli_args(tiny_sd, cli_clip, *extra))
    expected = ["compare-a-red-ball.gif", "compare-a-red-ball.mp4", "config.yaml", "img2img", "tuneavideo"]
    assert sorted(os.listdir(out)) == expected
    with Image.open(out / "compare-a-red-ball.gif") as gif:
        assert gif.width == 3 * SIZE  # source | img2img | tuned
        assert gif.height > SIZE  # captions above the frames
    info = probe_video(out / "compare-a-red-ball.mp4")
    assert (info.num_frames, info.width) == (FRAMES, 3 * SIZE)
    assert "Audio" in _streams(out / "compare-a-red-ball.mp4")
    for method, strength in (("img2img", 0.75), ("tuneavideo", None)):
        sidecar = json.loads((out / method / "a-red-ball.json").read_text())
        assert (sidecar["method"], sidecar["strength"], sidecar["num_inference_steps"]) == (method, strength, 4)
        assert sorted(os.listdir(out / method)) == ["a-red-ball.json", "a-red-ball.mp4", "grid.gif"]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if a model gets loaded: bad inputs must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "from_pretrained", refuse)
    monkeypatch.setattr(loading, "_build", refuse)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no base", "no model given"),
        ("no video", "Pass --video"),
        ("strength 0", "strength must be a number in (0, 1]"),
        ("strength 1.5", "strength must be a number in (0, 1]"),
        ("no denoising step", "leaves no denoising step"),
        ("pipeline only", "needs a plain SD-1.x model"),
        ("unknown method", "config key 'method' must be one of"),
    ],
)
def test_bad_img2img_requests_exit_2_before_loading(case, message, tiny_sd, cli_clip, tmp_path, caplog, no_model_loads):
    out = tmp_path / "out"
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "model_index.json").write_text("{}")
    argv = {
        "no base": ["--method", "img2img", "--video", str(cli_clip), "--prompt", "a"],
        "no video": ["--method", "img2img", "--base", str(tiny_sd), "--prompt", "a"],
        "strength 0": _cli_args(tiny_sd, cli_clip, "--method", "img2img", "--strength", "0"),
        "strength 1.5": _cli_args(tiny_sd, cli_clip, "--compare", "--strength", "1.5"),
        "no denoising step": _cli_args(tiny_sd, cli_clip, "--method", "img2img", "--strength", "0.1"),
        "pipeline only": ["--compare", "--pipeline", str(pipeline), "--video", str(cli_clip), "--prompt", "a"],
        "unknown method": _cli_args(tiny_sd, cli_clip, "--method", "img2imgg"),
    }[case]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main([*argv, "--out", str(out)]))
    assert exit_info.value.code == 2
    assert message in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["pipeline"]  # nothing written
