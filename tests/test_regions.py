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
