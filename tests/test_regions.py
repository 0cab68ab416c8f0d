"""Region edits (issue 23): the options, their bad inputs, the masks, the blending and the outputs."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vidsynth import inference
from vidsynth.cli import run_main
from vidsynth.config.inference import InferenceConfig
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
    argv += ["--segment", "person", "--edit-outside", "--segment-model", "tiny", "mask_dilate=2"]
    config = inference.resolve_config(inference.parse_args(argv))
    assert (config.segment, config.segment_point, config.region_edit) == ("person", [32.0, 16.0], "outside")
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
