"""Structure guidance: ControlNet in the video pipeline (parity with diffusers), maps from the clip, the CLI."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from diffusers import (
    ControlNetModel,
    MultiControlNetModel,
    StableDiffusionControlNetPipeline,
    UNet2DConditionModel,
)
from PIL import Image

from vidsynth import inference
from vidsynth.cli import run_main
from vidsynth.commands import child_env
from vidsynth.config import load_config
from vidsynth.config.inference import InferenceConfig
from vidsynth.control import ControlSpec, control_maps, controlnets, load_controlnets, spec
from vidsynth.control.depth import load_depth_estimator
from vidsynth.editing.request import resolve_request
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.video import probe_video, read_frames
from vidsynth.models import VideoUNet
from vidsynth.models.control import VideoControl
from vidsynth.models.windows import windowed_unet
from vidsynth.pipelines import ModelSource, TuneAVideoPipeline, load_pipeline, loading
from vidsynth.testing.tiny_controlnet import build_tiny_controlnet, tiny_controlnet
from vidsynth.testing.tiny_depth import build_tiny_depth
from vidsynth.testing.tiny_sd import tiny_unet

PROMPT = "a man is skiing"
FRAMES, SIZE = 3, 32  # 32 px -> 4x4 latents
WIDTH, HEIGHT = 32, 24  # the edit size of the 64x48 test clip
SPAN = [1, 3, 5]  # start_frame 1, stride 2, 3 frames


def _components(pipe: TuneAVideoPipeline) -> dict:
    return {name: getattr(pipe, name) for name in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _maps(count: int, frames: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(frames, 3, SIZE, SIZE, generator=generator) for _ in range(count)]  # (F, 3, H, W) in [0, 1]


def _latents(frames: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(1, 4, frames, 4, 4, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def unet_2d(tiny_sd):
    return UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet").eval()


@pytest.fixture(scope="module")
def nets(unet_2d) -> list[ControlNetModel]:
    """Two tiny ControlNets of the tiny SD UNet, with non-zero zero-convolutions."""
    return [tiny_controlnet(unet_2d, seed) for seed in (1, 2)]


@pytest.fixture(scope="module")
def inflated(tiny_sd):
    """The video pipeline as inflated: temporal output projection at zero."""
    return _quiet(load_pipeline(ModelSource("base", str(tiny_sd))))


@pytest.fixture(scope="module")
def controlnet_folder(unet_2d, tmp_path_factory):
    return build_tiny_controlnet(tmp_path_factory.mktemp("controlnet") / "tiny-controlnet", unet_2d, seed=1)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    """10 frames, 64x48 at 8 fps, with sound."""
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", 10, 64, 48, 8.0, audio_channels=1)


def _request(tiny_sd, clip_file, tmp_path, **options):
    """The request of an edit of the test clip's ``SPAN`` at ``WIDTH`` x ``HEIGHT`` (``options`` change it)."""
    span = {"num_frames": len(SPAN), "start_frame": SPAN[0], "stride": SPAN[1] - SPAN[0], "width": WIDTH}
    config = InferenceConfig(
        base=str(tiny_sd),
        video=str(clip_file),
        prompts=["a ball"],
        device="cpu",
        height=HEIGHT,
        out=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
        **{**span, **options},
    )
    return resolve_request(config)


# ---------------------------------------------------------------- the pipeline


@pytest.mark.parametrize("count", [1, 2])
def test_one_frame_equals_diffusers_controlnet_pipeline(inflated, unet_2d, nets, count):
    """One frame, temporal output projection at zero: the video UNet is the image UNet, so the pipelines agree."""
    controlnet = nets[0] if count == 1 else nets
    ours = _quiet(TuneAVideoPipeline(**_components(inflated), controlnet=controlnet))
    reference = _quiet(
        StableDiffusionControlNetPipeline(
            **{**_components(inflated), "unet": unet_2d},
            controlnet=controlnet,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    )
    maps = _maps(count, 1)
    conditioning = maps if count > 1 else maps[0]
    scale = [0.7, 1.3] if count > 1 else 0.7
    options = {"num_inference_steps": 2, "guidance_scale": 7.5, "negative_prompt": "blurry", "output_type": "np"}
    x = _latents(1)
    got = ours(
        PROMPT,
        1,
        SIZE,
        SIZE,
        latents=x,
        conditioning_frames=conditioning,
        controlnet_conditioning_scale=scale,
        **options,
    ).videos  # (1, 3, 1, H, W)
    want = reference(
        PROMPT,
        image=conditioning,
        height=SIZE,
        width=SIZE,
        latents=x[:, :, 0],
        controlnet_conditioning_scale=scale,
        **options,
    ).images  # (1, H, W, 3)
    assert np.abs(got[0, :, 0].transpose(1, 2, 0) - want[0]).max() <= 1e-5
    unguided = _quiet(TuneAVideoPipeline(**_components(inflated)))(PROMPT, 1, SIZE, SIZE, latents=x, **options).videos
    assert np.abs(got - unguided).max() > 1e-3  # the ControlNet changed the result: the comparison means something


def test_scale_zero_gives_exactly_the_output_without_a_controlnet(pipe, nets):
    plain = _quiet(TuneAVideoPipeline(**_components(pipe)))
    guided = _quiet(TuneAVideoPipeline(**_components(pipe), controlnet=nets[0]))
    x, (maps,) = _latents(FRAMES), _maps(1, FRAMES)
    options = {"num_inference_steps": 2, "latents": x, "output_type": "latent"}
    without = plain(PROMPT, FRAMES, SIZE, SIZE, **options).videos
    zero = guided(PROMPT, FRAMES, SIZE, SIZE, conditioning_frames=maps, controlnet_conditioning_scale=0.0, **options)
    one = guided(PROMPT, FRAMES, SIZE, SIZE, conditioning_frames=maps, controlnet_conditioning_scale=1.0, **options)
    assert torch.equal(zero.videos, without)
    assert (one.videos - without).abs().max() > 1e-3


@torch.no_grad()
def test_two_controlnets_sum_their_residuals_frame_by_frame(inflated, nets, monkeypatch):
    """As diffusers' MultiControlNetModel: each ControlNet on each frame alone, scaled, summed; (b f) order."""
    generator = torch.Generator().manual_seed(5)
    sample = torch.randn(2, 4, FRAMES, 4, 4, generator=generator)  # (b, c, F, h, w)
    text = torch.randn(2, 77, 32, generator=generator)
    maps = tuple(m.permute(1, 0, 2, 3).unsqueeze(0) for m in _maps(2, FRAMES))  # (1, 3, F, H, W) each
    scales = (0.7, 1.3)
    seen = []
    real = VideoControl.residuals
    monkeypatch.setattr(VideoControl, "residuals", lambda self, *args: seen.append(real(self, *args)) or seen[-1])
    inflated.unet(
        sample, 500, encoder_hidden_states=text, control=VideoControl(MultiControlNetModel(nets), maps, scales)
    )
    (got,) = seen
    for b in range(2):
        for f in range(FRAMES):
            each = [
                net(sample[b : b + 1, :, f], 500, text[b : b + 1], controlnet_cond=m[:, :, f], conditioning_scale=s)
                for net, m, s in zip(nets, maps, scales, strict=True)
            ]
            row = b * FRAMES + f
            for residual, first, second in zip(
                got["down_block_additional_residuals"], *(e.down_block_res_samples for e in each), strict=True
            ):
                assert torch.allclose(residual[row], (first + second)[0], atol=1e-5)
            mid = each[0].mid_block_res_sample + each[1].mid_block_res_sample
            assert torch.allclose(got["mid_block_additional_residual"][row], mid[0], atol=1e-5)


@torch.no_grad()
def test_control_maps_are_windowed_with_the_latents(tiny_sd, nets):
    """Per-frame GroupNorm, temporal projection at zero (causal): windows with control equal one forward."""
    unet = VideoUNet.from_pretrained_2d(tiny_sd, frame_norm="per_frame").eval()
    frames = 7
    generator = torch.Generator().manual_seed(6)
    sample = torch.randn(1, 4, frames, 4, 4, generator=generator)
    text = torch.randn(1, 77, 32, generator=generator)
    maps = torch.rand(1, 3, frames, SIZE, SIZE, generator=generator)  # a different map on every frame
    control = VideoControl(nets[0], (maps,), (1.0,))
    full = unet(sample, 500, encoder_hidden_states=text, control=control).sample
    windowed = windowed_unet(unet, sample, 500, text, 3, 1, control)
    assert (windowed - full).abs().max() <= 1e-5
    assert (windowed_unet(unet, sample, 500, text, 3, 1) - full).abs().max() > 1e-3


def test_control_runs_in_bf16(tiny_sd, controlnet_folder):
    """A 16-bit edit (the Jetson profile's fp16, here bf16 on the CPU): ControlNet, maps and residuals in one dtype."""
    controls = (ControlSpec("canny", str(controlnet_folder), 1.0, thresholds=(100, 200)),)
    controlnet = load_controlnets(controls, torch.bfloat16, "cpu")
    pipe = _quiet(load_pipeline(ModelSource("base", str(tiny_sd)), torch.bfloat16, "cpu", controlnet=controlnet))
    (maps,) = _maps(1, 2)
    latents = pipe(PROMPT, 2, SIZE, SIZE, num_inference_steps=1, conditioning_frames=maps, output_type="latent").videos
    assert latents.dtype == torch.bfloat16 and torch.isfinite(latents.float()).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditioning_frames": None}, "no conditioning_frames were given"),
        ({"conditioning_frames": torch.rand(FRAMES + 1, 3, SIZE, SIZE)}, "has 4 maps for 3 frames"),
        ({"conditioning_frames": torch.rand(FRAMES, 3, SIZE, SIZE) * 255}, r"must be in \[0, 1\].*Divide uint8"),
        ({"control_guidance_start": 0.5, "control_guidance_end": 0.2}, "0 <= start < end <= 1"),
        ({"controlnet_conditioning_scale": [1.0, 2.0]}, "must be a number"),
    ],
)
def test_bad_control_arguments_say_the_fix(inflated, nets, change, message):
    guided = TuneAVideoPipeline(**_components(inflated), controlnet=nets[0])
    call = {"conditioning_frames": torch.rand(FRAMES, 3, SIZE, SIZE), **change}
    with pytest.raises(VidSynthError, match=message):
        guided(PROMPT, FRAMES, SIZE, SIZE, **call)
    with pytest.raises(VidSynthError, match="the pipeline has no controlnet"):
        inflated(PROMPT, FRAMES, SIZE, SIZE, conditioning_frames=torch.rand(FRAMES, 3, SIZE, SIZE))


@pytest.mark.parametrize("count", [1, 2])
def test_save_and_load_round_trip_with_controlnets(pipe, nets, tmp_path, count):
    guided = _quiet(TuneAVideoPipeline(**_components(pipe), controlnet=nets[0] if count == 1 else nets))
    guided.save_pretrained(tmp_path / "pipe")
    loaded = _quiet(TuneAVideoPipeline.from_pretrained(tmp_path / "pipe"))
    assert type(loaded.controlnet) is (ControlNetModel if count == 1 else MultiControlNetModel)
    maps = _maps(count, FRAMES)
    options = {"conditioning_frames": maps if count > 1 else maps[0], "num_inference_steps": 2, "output_type": "latent"}
    generator = torch.Generator().manual_seed(0)
    first = guided(PROMPT, FRAMES, SIZE, SIZE, generator=generator, **options).videos
    again = loaded(PROMPT, FRAMES, SIZE, SIZE, generator=generator.manual_seed(0), **options).videos
    assert torch.equal(first, again)

    # A folder saved before ControlNets existed (no controlnet entry) loads, without one.
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    del index["controlnet"]
    (tmp_path / "pipe" / "model_index.json").write_text(json.dumps(index))
    for folder in tmp_path.glob("pipe/controlnet*"):
        shutil.rmtree(folder)
    assert TuneAVideoPipeline.from_pretrained(tmp_path / "pipe").controlnet is None


# ---------------------------------------------------------------- the maps


def test_canny_maps_of_a_generated_clip_match_cv2_canny_on_each_frame(
    tiny_sd, clip_file, controlnet_folder, tmp_path, monkeypatch
):
    options = {"controls": ["canny"], "controlnets": [str(controlnet_folder)], "canny_low_threshold": 50}
    request = _request(tiny_sd, clip_file, tmp_path, canny_high_threshold=150, **options)
    (maps,) = control_maps(request.controls, request.clip.read(), request.device, request.dtype)
    frames = read_frames(clip_file, SPAN, WIDTH, HEIGHT)  # the edited frames: same span, stride and size
    expected = np.stack([cv2.Canny(frame, 50, 150) for frame in frames])  # (F, H, W)
    assert maps.shape == (len(SPAN), HEIGHT, WIDTH, 3) and maps.dtype == np.uint8
    assert expected.any() and all(np.array_equal(maps[..., c], expected) for c in range(3))

    assert request.controls[0].cache.is_file()  # a second edit of the span reads them
    monkeypatch.setattr(cv2, "Canny", lambda *args: pytest.fail("canny maps were made again"))
    (cached,) = control_maps(request.controls, request.clip.read(), request.device, request.dtype)
    assert np.array_equal(cached, maps)
    others = [
        _request(tiny_sd, clip_file, tmp_path, canny_high_threshold=160, **options),
        _request(tiny_sd, clip_file, tmp_path, canny_high_threshold=150, **{**options, "canny_low_threshold": 40}),
        _request(tiny_sd, clip_file, tmp_path, canny_high_threshold=150, **options, num_frames=2),
    ]
    assert len({request.controls[0].cache, *(other.controls[0].cache for other in others)}) == 4


def test_depth_maps_come_from_a_depth_model_saved_offline(tiny_sd, clip_file, controlnet_folder, tmp_path):
    depth = build_tiny_depth(tmp_path / "tiny-depth")
    options = {"controls": ["depth"], "controlnets": [str(controlnet_folder)], "depth_model": str(depth)}
    request = _request(tiny_sd, clip_file, tmp_path, **options)
    (maps,) = control_maps(request.controls, request.clip.read(), request.device, request.dtype)
    assert maps.shape == (len(SPAN), HEIGHT, WIDTH, 3) and maps.dtype == np.uint8
    assert all(np.array_equal(maps[..., c], maps[..., 0]) for c in range(3))
    assert [(m.min(), m.max()) for m in maps] == [(0, 255)] * len(SPAN)  # each frame scaled on its own
    assert request.controls[0].cache.is_file()

    model, processor = load_depth_estimator(str(depth), torch.device("cpu"), torch.float32)
    frame = read_frames(clip_file, SPAN[:1], WIDTH, HEIGHT)[0]
    with torch.no_grad():
        output = model(**processor(images=[frame], return_tensors="pt"))
    predicted = processor.post_process_depth_estimation(output, target_sizes=[(HEIGHT, WIDTH)])[0]["predicted_depth"]
    assert np.corrcoef(predicted.flatten().numpy(), maps[0, ..., 0].flatten())[0, 1] > 0.99  # near is bright


def test_a_control_video_must_cover_the_span_and_line_up(tiny_sd, clip_file, controlnet_folder, tmp_path):
    short = render_scene(tmp_path / "short.mp4", 4, 64, 48, 8.0, audio_channels=0)  # the span needs frames 0-5
    wide = render_scene(tmp_path / "wide.mp4", 10, 64, 32, 8.0, audio_channels=0)
    pose = render_scene(tmp_path / "pose.mp4", 10, 128, 96, 8.0, audio_channels=0, seed=3)  # same aspect ratio

    def request(video):
        return _request(tiny_sd, clip_file, tmp_path, control_videos=[str(video)], controlnets=[str(controlnet_folder)])

    with pytest.raises(VidSynthError, match="short.mp4 has 4 frames, fewer than the span needs: .* frames 1 to 5"):
        request(short)
    with pytest.raises(VidSynthError, match="wide.mp4 is 64x32, but clip.mp4 is 64x48: its maps would not line up"):
        request(wide)
    resolved = request(pose)
    (maps,) = control_maps(resolved.controls, resolved.clip.read(), resolved.device, resolved.dtype)
    assert np.array_equal(maps, read_frames(pose, SPAN, WIDTH, HEIGHT)) and resolved.controls[0].cache is None


# ---------------------------------------------------------------- inference.py


@pytest.fixture(scope="module")
def wide_controlnet(tmp_path_factory):
    """A ControlNet of a base with another text width (16, where the tiny SD has 32)."""
    return build_tiny_controlnet(tmp_path_factory.mktemp("wide") / "wide", tiny_unet(cross_attention_dim=16))


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "_build", refuse)
    monkeypatch.setattr(controlnets.ControlNetModel, "from_pretrained", refuse)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--control", "edges"], "unknown control 'edges' (--control). Known controls: canny, depth"),
        (["--control", "canny", "--controlnet", "{wide}"], "width 16, but the base model's UNet has 32"),
        (["--control-video", "{short}", "--controlnet", "{controlnet}"], "fewer than the span needs"),
        (["--control-video", "{clip}"], "a control video needs the ControlNet its maps are made for"),
        (["--control", "canny", "--controlnet", "{controlnet}", "--controlnet", "{wide}"], "2 --controlnet for 1"),
    ],
)
def test_bad_control_input_exits_2_before_any_model_loads_and_writes_nothing(
    tiny_sd, clip_file, controlnet_folder, wide_controlnet, tmp_path, caplog, no_model_loads, extra, message
):
    short = render_scene(tmp_path / "short.mp4", 4, 64, 48, 8.0, audio_channels=0)
    paths = {"wide": wide_controlnet, "short": short, "controlnet": controlnet_folder, "clip": clip_file}
    extra = [word.format(**paths) for word in extra]
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["--base", str(tiny_sd), "--video", str(clip_file), "--prompt", "a ball", "--frames", "3", *extra]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main([*argv, "--out", str(out), f"cache_dir={cache}", "width=32", "height=24"]))
    assert exit_info.value.code == 2
    assert message in caplog.text
    assert not out.exists() and not cache.exists()


def test_inference_with_control_canny_writes_the_mp4_and_a_grid_with_the_maps(
    tiny_sd, clip_file, controlnet_folder, tmp_path, monkeypatch
):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = [
        "--base", str(tiny_sd), "--video", str(clip_file), "--prompt", "a red ball", "--frames", "3", "--steps", "2",
        "--inversion-steps", "2", "--control", "canny", "--controlnet", str(controlnet_folder),
        "--control-scale", "0.8",
    ]  # fmt: skip
    layers = [f"cache_dir={cache}", f"width={WIDTH}", f"height={HEIGHT}"]
    inference.main([*argv, "--compare", "--out", str(out), *layers])
    assert sorted(os.listdir(out)) == [
        "compare-a-red-ball.gif", "compare-a-red-ball.mp4", "config.yaml", "img2img", "tuneavideo"
    ]  # fmt: skip
    info = probe_video(out / "tuneavideo" / "a-red-ball.mp4")
    assert (info.num_frames, info.width, info.height) == (3, WIDTH, HEIGHT)
    for grid, columns in ((out / "tuneavideo" / "grid.gif", 3), (out / "compare-a-red-ball.gif", 4)):
        with Image.open(grid) as gif:
            assert gif.width == columns * WIDTH  # source | canny maps | edit(s)
    sidecar = json.loads((out / "tuneavideo" / "a-red-ball.json").read_text())
    control = {"kind": "canny", "controlnet": str(controlnet_folder), "scale": 0.8, "thresholds": [100, 200]}
    assert sidecar["control"] == {"controls": [control], "guidance_start": 0.0, "guidance_end": 1.0}
    saved = load_config(InferenceConfig, [out / "config.yaml"])
    assert (saved.controls, saved.controlnets, saved.control_scales) == (["canny"], [str(controlnet_folder)], [0.8])

    # A second edit with a new prompt reuses the maps and the inversion, which ran without the ControlNet.
    monkeypatch.setattr(cv2, "Canny", lambda *args: pytest.fail("canny maps were made again"))
    monkeypatch.setattr(TuneAVideoPipeline, "invert", lambda *args, **kwargs: pytest.fail("inverted again"))
    inference.main([*argv[:5], "a blue ball", *argv[6:], "--format", "gif", "--out", str(tmp_path / "again"), *layers])
    assert sorted(os.listdir(tmp_path / "again")) == ["config.yaml", "grid.gif"]


def test_default_controlnets_come_from_the_download_folder_or_the_hub(
    tiny_sd, clip_file, controlnet_folder, tmp_path, monkeypatch
):
    monkeypatch.setattr(spec, "CHECKPOINTS", tmp_path / "checkpoints")
    with pytest.raises(VidSynthError, match="hub for the ControlNet lllyasviel/control_v11p_sd15_canny .*--control"):
        _request(tiny_sd, clip_file, tmp_path, controls=["canny"])  # offline, nothing downloaded
    shutil.copytree(controlnet_folder, tmp_path / "checkpoints" / "control_v11p_sd15_canny")  # as download_models.sh
    request = _request(tiny_sd, clip_file, tmp_path, controls=["canny"])
    assert request.controls[0].controlnet == str(tmp_path / "checkpoints" / "control_v11p_sd15_canny")
    assert request.config.controlnets == [request.controls[0].controlnet] and request.config.control_scales == [1.0]


def test_the_default_controlnet_off_the_network_fails_in_seconds_with_one_line(tiny_sd, clip_file, tmp_path):
    env = child_env({key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE")})
    env.update(HF_ENDPOINT="http://127.0.0.1:1", HF_HOME=str(tmp_path / "hf"))  # no hub, an empty cache
    out = tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(clip_file), "--prompt", "a ball", "--control", "canny"]
    command = [sys.executable, "-m", "vidsynth.inference", *argv, "--out", str(out)]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()  # no retries, no traceback
    assert "ControlNet lllyasviel/control_v11p_sd15_canny" in line and "http://127.0.0.1:1 does not answer" in line
    assert "./download_models.sh --control" in line and not out.exists()
