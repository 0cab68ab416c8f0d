"""Region edits (issue 23): the options, their bad inputs, the masks, the blending and the outputs."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vidsynth import inference
from vidsynth.cache_keys import mask_cache_path
from vidsynth.cli import run_main
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.region import RegionSpec
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.writers import write_video
from vidsynth.pipelines import loading

SIZE, FRAMES = 32, 4
TRAIN_PROMPT = "a ball is flying"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """8 frames at 8 fps with sound; the edits take frames 0, 2, 4, 6 (the tuning defaults' stride, 2)."""
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", 8, 64, 64, 8.0, audio_channels=1)


@pytest.fixture(scope="module")
def tuned_folder(tmp_path_factory, clip) -> Path:
    """A folder as the original Tune-A-Video leaves it (its config names the clip and the train prompt): no weights,
    enough for every check that runs before a model loads."""
    folder = tmp_path_factory.mktemp("run") / "ball"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet3DConditionModel"}))
    (folder / "config.yaml").write_text(
        f"train_data:\n  video_path: {clip}\n  prompt: {TRAIN_PROMPT}\n  n_sample_frames: {FRAMES}\n"
        f"  width: {SIZE}\n  height: {SIZE}\n  sample_start_idx: 0\n  sample_frame_rate: 2\n"
    )
    return folder


def mask_video(path: Path, frames: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A black-and-white video: the left half white (the region), at a size other than the edit's."""
    width, height = size
    video = np.zeros((frames, height, width, 3), np.uint8)
    video[:, :, : width // 2] = 255
    write_video(path, video, 4.0)
    return path


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "_build", refuse)


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main(argv))
    return exit_info.value.code


STEPS = ["--steps", "2", "--inversion-steps", "2"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--region", "panda"], "--region 'panda' is not a word of the source prompt ('a ball is flying') or an edit"),
        (["--region", "red ball", "--steps", "3"], "--inversion-steps (2) must equal --steps (3)"),
        (["--region", "ball", "--no-inversion"], "it needs the inversion. Leave out --no-inversion"),
        (["--mask-video", "{masks3}"], "has 3 frames, the edit 4. Give one mask frame per edited frame"),
        (["--mask-video", "{text}"], "Cannot read"),
        (["--region", "ball", "--background", "{notes}"], "is neither an image nor a video"),
        (["--region", "ball", "--background", "#00ff0"], "colour '#00ff0' does not parse. Write it as #RRGGBB"),
        (["--edit-inside"], "--edit-inside/--edit-outside needs a region. Add --region WORD"),
        (["--background", "blur"], "--background needs a region"),
        (["--region", "ball", "--mask-video", "{masks4}"], "several region sources given (word, mask-video)"),
        (["--region", "ball", "--region-from", "segment"], "--region-from segment but no such region was given"),
        (["--region", "ball", "--background", "blur", "--harmonize", "1"], "'harmonize' must be in [0, 1)"),
        (["--region", "ball", "--harmonize", "0.2"], "--harmonize edits a replaced background"),
        (["--segment-box", "10,10,5,20"], "X0 < X1 and Y0 < Y1"),
        (["--segment-point", "70,10"], "--segment-point 70,10 lies outside the frame, which is 64x64 pixels"),
        (["--segment-box", "1,-2,5,20"], "--segment-box 1,-2,5,20 lies outside the frame, which is 64x64 pixels"),
        (["--segment", "person", "--segment-box", "1,1,5,5"], "place it by hand. Give one"),
    ],
)
def test_bad_region_inputs_exit_2_before_any_model_loads_and_write_nothing(
    tuned_folder, tmp_path, caplog, no_model_loads, extra, message
):
    files = {
        "{masks3}": mask_video(tmp_path / "masks3.mp4", 3),
        "{masks4}": mask_video(tmp_path / "masks4.mp4", FRAMES),
        "{text}": tmp_path / "notes.mp4",
        "{notes}": tmp_path / "notes.txt",
    }
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "notes.txt").write_text("not an image")
    extra = [str(files.get(arg, arg)) for arg in extra]
    out = tmp_path / "out"
    argv = ["--run", str(tuned_folder), "--prompt", "a red ball", *STEPS, "--out", str(out), *extra]
    assert _exit_code(argv) == 2
    assert message in caplog.text, caplog.text
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    assert not out.exists()


def test_region_flags_set_the_config_keys_and_a_word_of_either_prompt_resolves(tuned_folder, tmp_path, monkeypatch):
    from vidsynth.editing.request import resolve_request

    argv = ["--run", str(tuned_folder), "--prompt", "a red cat", *STEPS, "--segment-point", "32,16"]
    argv += ["--edit-outside", "--segment-model", "tiny", "mask_dilate=2"]
    config = inference.resolve_config(inference.parse_args(argv))
    assert (config.segment_point, config.region_edit) == ([32.0, 16.0], "outside")
    assert (config.segment_model, config.mask_dilate) == ("tiny", 2)
    with pytest.raises(VidSynthError, match="do not apply to a background replacement"):
        inference.resolve_config(inference.parse_args([*argv, "--background-prompt", "a beach"]))
    base = InferenceConfig(run=str(tuned_folder), prompts=["a red cat"], num_inference_steps=2, inversion_steps=2)
    for phrase, holder in (("BALL", TRAIN_PROMPT), ("red cat", "a red cat")):  # the source prompt first
        request = resolve_request(InferenceConfig(**{**vars(base), "region": phrase, "out": str(tmp_path / phrase)}))
        assert (request.region.source, request.region.edit, request.region.word_prompt) == ("word", "inside", holder)
        assert request.region.cache.name.startswith("mask-")
    segment = InferenceConfig(**{**vars(base), "segment_point": [32, 16], "out": str(tmp_path / "seg")})
    request = resolve_request(segment)
    assert request.region.point == (16.0, 8.0)  # the source's 64x64 pixels in the edit's 32x32
    background = InferenceConfig(**{**vars(base), "prompts": [], "background_prompt": "a beach", "segment": "person"})
    request = resolve_request(InferenceConfig(**{**vars(background), "out": str(tmp_path / "bg")}))
    assert request.config.prompts == ["a beach"] and request.region.edit == "outside"
    assert os.listdir(tmp_path) == []  # resolving writes nothing


@pytest.fixture(scope="module")
def small_clip(clip):
    from vidsynth.media.video import read_clip

    return read_clip(clip, 3, SIZE, SIZE, 0, 2)  # (3, 32, 32, 3): latents (1, 4, 3, 4, 4)


def test_latents_outside_the_region_are_the_source_s_at_every_step(pipe, small_clip, one_thread):
    """An empty mask gives the source through the VAE; a full one the plain edit, bit for bit; half a frame keeps
    the source's latents outside the region at every step and its pixels beyond the feathered edge."""
    import torch

    from vidsynth.editing.render import encode_clip
    from vidsynth.regions.blend import LatentBlend, feathered, keep_source, latent_mask

    latents = encode_clip(pipe, small_clip)  # (1, 4, 3, 4, 4)
    trajectory = pipe.invert(latents, num_inference_steps=2, return_all=True)

    def sample(masks=None):
        seen, callback = [], None
        if masks is not None:
            blend = LatentBlend(trajectory, latent_mask(masks, "inside", 2, (4, 4)))

            def callback(p, i, t, tensors):
                seen.append(blend(p, i, t, tensors)["latents"])
                return {"latents": seen[-1]}

        kwargs = dict(num_frames=3, height=SIZE, width=SIZE, num_inference_steps=2, guidance_scale=7.5)
        generator = torch.Generator().manual_seed(0)
        output = pipe(
            "a red ball",
            **kwargs,
            latents=trajectory[-1],
            generator=generator,
            output_type="latent",
            callback_on_step_end=callback,
        )
        return output.videos, seen

    plain, _ = sample()
    full, _ = sample(torch.ones(3, SIZE, SIZE))
    assert torch.equal(full, plain)
    empty, seen = sample(torch.zeros(3, SIZE, SIZE))
    assert len(seen) == 2 and all(torch.equal(s, trajectory[1 - i]) for i, s in enumerate(seen))
    assert torch.equal(empty, latents)  # the source's latents: decoded, the clip through the VAE round trip
    decoded = pipe.decode_video(empty, 8)
    assert np.array_equal(decoded, pipe.decode_video(latents, 8))
    assert np.array_equal(
        keep_source(decoded, small_clip.frames, torch.zeros(3, SIZE, SIZE), "inside", 2), small_clip.frames
    )

    half = torch.zeros(3, SIZE, SIZE)
    half[:, :, : SIZE // 2] = 1
    edited, seen = sample(half)
    cells = latent_mask(half, "inside", 2, (4, 4))[0, 0]  # (3, 4, 4): columns 0-2 act (the edge reaches column 2)
    assert cells[:, :, :3].all() and not cells[:, :, 3:].any()
    assert torch.equal(seen[-1][..., 3:], latents[..., 3:]) and not torch.equal(seen[-1], latents)
    frames = keep_source(pipe.decode_video(edited, 8), small_clip.frames, half, "inside", 2)
    beyond = feathered(half.numpy(), 2) == 0  # past the 2-pixel edge: columns 19 and on
    assert beyond[:, :, 19:].all() and not beyond[:, :, :19].any()
    assert np.array_equal(frames[beyond], small_clip.frames[beyond])
    inside = half.numpy() == 1
    assert np.abs(frames[inside].astype(int) - small_clip.frames[inside]).mean() > 5


def test_a_callback_may_ask_only_for_the_pipeline_s_tensors(pipe):
    with pytest.raises(VidSynthError, match=r"\['noise'\] are not tensors of this pipeline. Pick from \['latents'"):
        pipe("x", 3, SIZE, SIZE, callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=["noise"])


def _read(path: Path) -> np.ndarray:
    from vidsynth.media.video import probe_video, read_frames

    return read_frames(path, range(probe_video(path).num_frames))


def test_a_mask_video_edit_keeps_the_source_outside_and_writes_the_mask_its_column_and_sidecar(
    tiny_sd, clip, tmp_path, one_thread
):
    from PIL import Image

    from vidsynth.config import load_config
    from vidsynth.media.video import read_clip
    from vidsynth.regions.blend import feathered

    masks = mask_video(tmp_path / "masks.mp4", FRAMES)
    out = tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--frames", str(FRAMES), "--prompt", "a red ball", *STEPS]
    inference.main([*argv, "--mask-video", str(masks), "--out", str(out), "width=32", "height=32", "mask_feather=2"])
    names = ["a-red-ball.json", "a-red-ball.mask.mp4", "a-red-ball.mp4", "config.yaml", "grid.gif"]
    assert sorted(os.listdir(out)) == names
    sidecar = json.loads((out / "a-red-ball.json").read_text())
    assert sidecar["region"] == {
        "source": "mask-video",
        "edit": "inside",
        "feather": 2,
        "mask_video": str(masks),
        "mask": "a-red-ball.mask.mp4",
    }
    written = _read(out / "a-red-ball.mask.mp4").mean(axis=-1) >= 128  # (F, 32, 32)
    assert written[:, :, :15].all() and not written[:, :, 17:].any()  # the left half (the codec blurs its edge)
    with Image.open(out / "grid.gif") as gif:
        assert gif.width == 3 * SIZE  # source | mask | edit
    source = read_clip(clip, FRAMES, SIZE, SIZE, 0, 2).frames.astype(int)
    edited = _read(out / "a-red-ball.mp4").astype(int)
    half = np.zeros((FRAMES, SIZE, SIZE), np.float32)
    half[:, :, : SIZE // 2] = 1
    beyond = feathered(half, 2) == 0
    assert np.abs(edited - source)[beyond].mean() < 3  # the source's, through the codec
    assert np.abs(edited - source)[half == 1].mean() > 10  # the edit
    saved = load_config(InferenceConfig, [out / "config.yaml"])
    assert (saved.mask_video, saved.region_edit) == (str(masks), "inside")


def test_background_replacement_keeps_the_subject_s_pixels_exactly(tmp_path, clip):
    import torch
    from PIL import Image

    from vidsynth.media.video import read_clip
    from vidsynth.regions.background import background_frames
    from vidsynth.regions.blend import subject_over

    frames = read_clip(clip, FRAMES, SIZE, SIZE, 0, 2).frames  # (4, 32, 32, 3)
    masks = torch.zeros(FRAMES, SIZE, SIZE)
    masks[:, 8:24, 8:24] = 1
    green = subject_over(frames, background_frames("#00ff00", frames), masks, 2)
    subject = masks.numpy() == 1
    assert np.array_equal(green[subject], frames[subject])
    assert (green[:, :, 27:] == [0, 255, 0]).all() and (green[:, :5] == [0, 255, 0]).all()  # past the 2-pixel edge
    Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(tmp_path / "wall.png")
    assert (background_frames(str(tmp_path / "wall.png"), frames) == 200).all()
    video = background_frames(str(clip), frames)  # the clip's own first 4 frames, stretched
    assert video.shape == frames.shape and np.array_equal(video[0], read_clip(clip, 1, SIZE, SIZE).frames[0])
    blurred = background_frames("blur", frames)
    assert blurred.shape == frames.shape and blurred.std() < frames.std()


def test_a_10_s_clip_segmented_over_a_green_background_is_every_frame_with_its_sound(
    tiny_sd, tmp_path, no_model_loads, one_thread
):
    """--segment person with the tiny CLIPSeg and SAM 2 video models; no video model loads for a plain new
    background (``no_model_loads``)."""
    from tests.test_long_clips import _audio_seconds
    from vidsynth.media.video import probe_video

    long = render_scene(tmp_path / "long.mp4", 80, 32, 32, 8.0, audio_channels=1)  # 10 s at 8 fps
    out = tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(long), "--frames", "all", "--stride", "1", "--prompt", "me"]
    argv += ["--segment", "person", "--segment-model", "tiny", "--segment-text-model", "tiny"]
    argv += ["--background", "#00ff00", f"cache_dir={tmp_path / 'cache'}", "width=32", "height=32", "--format", "mp4"]
    inference.main([*argv, "--out", str(out)])
    assert sorted(os.listdir(out)) == ["config.yaml", "me.json", "me.mask.mp4", "me.mp4"]
    info = probe_video(out / "me.mp4")
    assert (info.num_frames, info.fps, info.has_audio) == (80, 8.0, True)
    assert abs(_audio_seconds(out / "me.mp4") - 10) <= 1 / 8
    assert probe_video(out / "me.mask.mp4").num_frames == 80
    region = json.loads((out / "me.json").read_text())["region"]
    assert (region["source"], region["text"], region["background"]) == ("segment", "person", "#00ff00")


def test_a_word_region_s_masks_and_inversion_are_cached_for_the_next_edit(
    tiny_sd, clip, tmp_path, monkeypatch, one_thread
):
    import torch

    from vidsynth.pipelines import TuneAVideoPipeline
    from vidsynth.regions import word

    cache = tmp_path / "cache"
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--frames", "2", *STEPS, "--region", "ball", "--no-audio"]
    argv += [f"cache_dir={cache}", "width=32", "height=32", "--format", "mp4"]
    inference.main([*argv, "--prompt", "a red ball", "--out", str(tmp_path / "one")])
    (mask_file,) = cache.glob("mask-*.pt")
    assert len(list(cache.glob("inversion-*-steps.pt"))) == 1
    masks = torch.load(mask_file, weights_only=True)
    assert masks.shape == (2, SIZE, SIZE)
    written = _read(tmp_path / "one" / "a-red-ball.mask.mp4").mean(axis=-1) >= 128
    assert (written == (masks.numpy() == 1)).mean() > 0.95  # the cached masks, written (the codec blurs edges)

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(word, "word_masks", refuse)
    monkeypatch.setattr(TuneAVideoPipeline, "invert", refuse)
    inference.main([*argv, "--prompt", "a red ball", "--prompt", "a ball at night", "--out", str(tmp_path / "two")])
    sidecar = json.loads((tmp_path / "two" / "a-ball-at-night.json").read_text())
    assert sidecar["region"]["word"] == "ball" and sidecar["region"]["prompt"] == "a red ball"  # the first holding it


def test_a_segmentation_text_that_matches_nothing_fails_before_the_inversion(tiny_sd, clip, tmp_path, caplog):
    """mask_threshold=0.999999: the tiny CLIPSeg's strongest logit here (about 12) stays below it: nothing found."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--frames", "2", *STEPS, "--prompt", "a beach"]
    argv += ["--segment", "person", "--segment-model", "tiny", "--segment-text-model", "tiny", "--out", str(out)]
    assert _exit_code([*argv, f"cache_dir={cache}", "width=32", "height=32", "mask_threshold=0.999999"]) == 2
    assert "'person' matches nothing in the span's first frame" in caplog.text
    assert not out.exists()
    assert not list(tmp_path.rglob("*.pt"))  # no inversion (nor mask) cache written


def test_a_segment_point_edits_outside_with_the_baseline_composited_too(tiny_sd, clip, tmp_path, one_thread):
    """--compare: the img2img baseline gets the same masks, composited in pixels; the subject is the source's."""
    out = tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--frames", "2", *STEPS, "--prompt", "a beach", "--compare"]
    argv += ["--segment-point", "32,32", "--segment-model", "tiny", "--edit-outside", "--format", "mp4"]
    inference.main([*argv, "--out", str(out), f"cache_dir={tmp_path / 'cache'}", "width=32", "height=32"])
    for method in ("img2img", "tuneavideo"):
        assert sorted(os.listdir(out / method)) == ["a-beach.json", "a-beach.mask.mp4", "a-beach.mp4"]
        region = json.loads((out / method / "a-beach.json").read_text())["region"]
        assert (region["source"], region["edit"], region["point"], region["model"]) == (
            "segment",
            "outside",
            [16.0, 16.0],
            "tiny",
        )
    assert sorted(os.listdir(out)) == ["compare-a-beach.mp4", "config.yaml", "img2img", "tuneavideo"]
    import torch

    from vidsynth.media.video import read_clip

    (mask_file,) = (tmp_path / "cache").glob("mask-*.pt")
    subject = torch.load(mask_file, weights_only=True).numpy() == 1  # (2, 32, 32)
    assert subject.any() and not subject.all()  # the tiny SAM 2 follows something around the point
    source = read_clip(clip, 2, SIZE, SIZE, 0, 2).frames.astype(int)
    for method in ("img2img", "tuneavideo"):
        edited = _read(out / method / "a-beach.mp4").astype(int)
        assert np.abs(edited - source)[subject].mean() < np.abs(edited - source)[~subject].mean()


def test_harmonize_mixes_a_light_edit_into_the_new_background_and_keeps_the_subject(
    tiny_sd, clip, tmp_path, one_thread
):
    import dataclasses

    from vidsynth.editing.request import resolve_request
    from vidsynth.editing.run import edit_videos
    from vidsynth.regions.blend import feathered

    masks = mask_video(tmp_path / "masks.mp4", 2, (32, 32))
    config = InferenceConfig(
        base=str(tiny_sd), video=str(clip), num_frames=2, width=SIZE, height=SIZE, prompts=["sunset light"],
        num_inference_steps=2, inversion_steps=2, mask_video=str(masks), background="#00ff00", harmonize=0.5,
        mask_feather=2, device="cpu", out=str(tmp_path / "out"),
    )  # fmt: skip
    request = resolve_request(config)
    clip_frames = request.clip.read()
    videos, region = edit_videos(request, clip_frames)
    (harmonized,) = videos["tuneavideo"]
    plain_request = dataclasses.replace(request, region=dataclasses.replace(request.region, harmonize=0.0))
    (plain,) = edit_videos(plain_request, clip_frames)[0]["tuneavideo"]
    subject = region.numpy() == 1
    assert np.array_equal(harmonized[subject], clip_frames.frames[subject])
    assert np.array_equal(plain[subject], clip_frames.frames[subject])
    beyond = feathered(region.numpy(), 2) == 0
    assert (plain[beyond] == [0, 255, 0]).all()
    change = np.abs(harmonized.astype(int) - plain)[beyond]
    assert change.max() <= 0.5 * 255 + 1 and change.mean() > 1  # S = 0.5 of the edit mixed into the background
    assert not (tmp_path / "out").exists()


def test_a_word_s_mask_cache_is_keyed_on_the_unet_s_windows_and_loras(tmp_path):
    """A word's masks come from the UNet run in windows with the LoRAs fused: either changed, another file."""
    span = SimpleNamespace(path=str(tmp_path), start_frame=0, stride=1, num_frames=8, width=32, height=32)
    region = RegionSpec(source="word", edit="inside", text="ball", word_prompt="a ball")

    def path(window, overlap=1, loras=None):
        windowed = SimpleNamespace(**vars(span), window=window, window_overlap=overlap)
        return mask_cache_path(None, str(tmp_path), windowed, region, "float32", "cpu", [], 2, loras)

    assert path(4) == path(4) != path(2) != path(4, overlap=2)
    assert path(4) != path(4, loras={"scale": 0.5, "styles": []})
    assert path(8, 0) == path(8, 3)  # one window covers the span: the overlap does not matter


def test_a_region_edit_guided_by_a_controlnet_keeps_the_source_outside(tiny_sd, clip, tmp_path, one_thread):
    from vidsynth.media.video import read_clip
    from vidsynth.regions.blend import feathered

    masks = mask_video(tmp_path / "masks.mp4", FRAMES)
    out = tmp_path / "out"
    argv = ["--base", str(tiny_sd), "--video", str(clip), "--frames", str(FRAMES), "--prompt", "a red ball", *STEPS]
    guide = ["--control", "canny", "--controlnet", "tiny", "--mask-video", str(masks), "--out", str(out)]
    inference.main([*argv, *guide, "width=32", "height=32", "mask_feather=2", "audio=false"])
    sidecar = json.loads((out / "a-red-ball.json").read_text())
    assert sidecar["region"]["source"] == "mask-video" and sidecar["control"]
    source = read_clip(clip, FRAMES, SIZE, SIZE, 0, 2).frames.astype(int)
    edited = _read(out / "a-red-ball.mp4").astype(int)
    half = np.zeros((FRAMES, SIZE, SIZE), np.float32)
    half[:, :, : SIZE // 2] = 1
    assert np.abs(edited - source)[feathered(half, 2) == 0].mean() < 3  # the source's, through the codec
    assert np.abs(edited - source)[half == 1].mean() > 10  # the guided edit
