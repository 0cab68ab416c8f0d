"""The Edit tab's region options, called as the page calls them (:class:`PageHandlers`), with the queued command
parsed back as ``inference.py`` parses it; no model runs.

Each kind of region (a word, a segmentation text, a click on the first frame, an uploaded mask video) and
each background (an uploaded image, a colour, a prompt) reaches ``inference.py`` as its flags; a click lands
on the source video's pixels; an uploaded file is queued as the app's own copy, never as the path the
request named; bad region input is one line in the page's words and queues nothing.
"""

import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from vidsynth import inference
from vidsynth.app.handlers import PageHandlers
from vidsynth.app.models import TINY_SEGMENT_NOTICE, segment_models
from vidsynth.app.region import BACKGROUNDS, MASK_VIDEOS, SHOWN_SIDE
from vidsynth.app.region_fields import click_frame, edit_mask
from vidsynth.app.service import Studio
from vidsynth.config.inference import SEGMENT_MODEL, SEGMENT_TEXT_MODEL
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.video import read_frames
from vidsynth.models.trainable import FORMAT
from vidsynth.run_folder import CONFIG_FILE, RESULT_FILE

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

SPAN_START, SPAN_FRAMES = 2, 4  # the run's span: frames 2, 3, 4, 5 of its clip
CLIP_SIZE = (768, 432)  # larger than the page shows it (SHOWN_SIDE), so a click is scaled


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("region-app")
    (root / "checkpoints").mkdir()
    studio = Studio(root / "outputs", checkpoints=root / "checkpoints")
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def page(studio) -> PageHandlers:
    return PageHandlers(studio)


@pytest.fixture(scope="module")
def clip(studio, page, tmp_path_factory) -> Path:
    upload = render_scene(tmp_path_factory.mktemp("upload") / "surf.mp4", 8, *CLIP_SIZE, 8.0)
    return studio.clips / page.upload_clip(str(upload)).name


@pytest.fixture(scope="module")
def run(studio, clip) -> str:
    """A finished run on a 768x432 clip, as ``inference.py`` resolves it before loading a model (no weights)."""
    folder = studio.outputs / "surf-run"
    folder.mkdir()
    metadata = {"format": FORMAT, "base_model": str(studio.models.bases[0])}
    save_file({"unused": torch.zeros(1)}, folder / RESULT_FILE, metadata=metadata)
    train_data = {"video_path": str(clip), "prompt": "a man is surfing", "n_sample_frames": SPAN_FRAMES}
    train_data |= {"sample_start_idx": SPAN_START, "sample_frame_rate": 1, "width": 64, "height": 32}
    (folder / CONFIG_FILE).write_text(f"train_data: {train_data!r}\n")
    return folder.name


@pytest.fixture
def submitted(studio, monkeypatch) -> list:
    """The tasks the page queues, kept here instead of run."""
    tasks = []

    def submit(task):
        tasks.append(task)
        return types.SimpleNamespace(id=len(tasks), task=task)

    monkeypatch.setattr(studio.queue, "submit", submit)
    return tasks


def edit_values(run: str, **region) -> dict:
    values = {"run": run, "prompts": "a panda is surfing", "steps": 2, "guidance": 7.5, "seed": 1, "inversion": True}
    values |= {"method": "tuneavideo", "compare": False, "strength": 0.5, "controls": [], "control_video": None}
    return values | {"controlnets": [], "control_scales": ""} | region


def queued(task):
    """The queued ``inference.py`` command's flags and the config they parse back to."""
    (label, (_, _, module, *flags)), _ = task.begin()
    assert (label, module) == ("editing", "vidsynth.inference")
    return flags, inference.resolve_config(inference.parse_args(flags))


def region_of(config) -> dict:
    keys = ("region", "segment", "segment_point", "mask_video", "region_edit", "background", "background_prompt")
    return {key: getattr(config, key) for key in keys if getattr(config, key) not in (None, [])}


def test_each_kind_of_region_reaches_inference_py_as_its_flags(page, run, submitted):
    asks = [
        ({"region_word": " surfing "}, {"region": "surfing", "region_edit": "inside"}),
        ({"segment": "person", "region_edit": "outside"}, {"segment": "person", "region_edit": "outside"}),
        ({"segment_point": "384, 216"}, {"segment_point": [384.0, 216.0], "region_edit": "inside"}),
        ({"segment": "person", "background_colour": "#00ff00"}, {"segment": "person", "background": "#00ff00"}),
        ({"segment": "face", "background_colour": "blur"}, {"segment": "face", "background": "blur"}),
        ({}, {}),  # no region: the whole frame, no region flag
    ]
    for number, (asked, expected) in enumerate(asks, start=1):
        assert page.edit(**edit_values(run, **asked)) == f"Job {number} queued: edit {run}: 'a panda is surfing'"
        flags, config = queued(submitted[-1])
        assert region_of(config) == expected, asked
        assert config.prompts == ["a panda is surfing"] and config.num_inference_steps == 2
    flags, _ = queued(submitted[2])
    assert "--segment-point=384.0,216.0" in flags and "--edit-inside" in flags
    # A new background made by the video model: its prompt is the edit's, so "prompts" stays blank.
    asked = {"prompts": "", "region_word": "man", "background_prompt": "a snowy beach"}
    assert page.edit(**edit_values(run, **asked)) == f"Job {len(asks) + 1} queued: edit {run}: 'a snowy beach'"
    flags, config = queued(submitted[-1])
    assert region_of(config) == {"region": "man", "background_prompt": "a snowy beach"} and config.prompts == []
    assert "--background-prompt=a snowy beach" in flags and not any(flag.startswith("--prompt") for flag in flags)
    for task in submitted[1:5]:  # a segmentation: the app's models (tiny here: none is on this machine)
        flags, config = queued(task)
        assert (
            (config.segment_model, config.segment_text_model) == ("tiny", "tiny") == page.studio.models.segment_models
        )
        assert "--segment-model=tiny" in flags and "--segment-text-model=tiny" in flags
    no_region = queued(submitted[len(asks) - 1])[0]
    assert not any(flag.startswith(("--region", "--segment", "--background", "--edit-")) for flag in no_region)


def test_a_click_on_the_first_frame_is_the_point_in_the_clips_pixels(page, clip, run):
    frame = read_frames(clip, [SPAN_START])[0]
    marked, point = click_frame(page, run, 256, 144)
    shown_size = (SHOWN_SIDE, round(SHOWN_SIDE * CLIP_SIZE[1] / CLIP_SIZE[0]))
    assert marked.shape == (shown_size[1], shown_size[0], 3)  # the span's first frame, as the page shows it
    assert point == "384,216"  # 256/512 and 144/288 of 768x432
    assert click_frame(page, run, 511, 0)[1] == "766.5,0"
    shown = np.asarray(Image.fromarray(frame).resize(shown_size, Image.Resampling.BILINEAR)).astype(int)
    changed = np.abs(marked.astype(int) - shown).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert changed.any() and abs(xs.mean() - 256) < 2 and abs(ys.mean() - 144) < 2  # the ring, around the click
    assert np.abs(marked.astype(int) - shown)[~changed].max() == 0  # and nothing else: it is that frame
    with pytest.raises(VidSynthError, match="not a finished run"):
        click_frame(page, "../surf-run", 1, 1)


def test_an_uploaded_mask_video_and_background_are_queued_as_the_apps_own_copies(
    page, studio, run, submitted, tmp_path
):
    upload = tmp_path / "gradio-upload-71aa" / "surfer mask.mp4"
    upload.parent.mkdir()
    render_scene(upload, SPAN_FRAMES, *CLIP_SIZE, 8.0, audio_channels=0)
    background = tmp_path / "gradio-upload-71ab" / "beach.png"
    background.parent.mkdir()
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(background)
    assert page.edit(**edit_values(run, mask_video=str(upload), background=str(background))).startswith("Job 1")
    upload.unlink()  # Gradio removes its copies of uploads: the job reads the app's
    background.unlink()
    flags, config = queued(submitted[0])
    mask, kept_background = studio.outputs / MASK_VIDEOS, studio.outputs / BACKGROUNDS
    assert config.mask_video.startswith(f"{mask}/surfer-mask-") and config.mask_video.endswith(".mp4")
    assert config.background.startswith(f"{kept_background}/beach-") and config.background.endswith(".png")
    assert f"--mask-video={config.mask_video}" in flags and f"--background={config.background}" in flags
    assert not any(str(tmp_path) in flag for flag in flags)
    assert read_frames(config.mask_video, range(SPAN_FRAMES)).shape == (SPAN_FRAMES, CLIP_SIZE[1], CLIP_SIZE[0], 3)
    assert (config.region_edit, config.region, config.segment) == (None, None, None)  # the subject kept


def test_bad_region_input_is_one_line_in_the_page_and_queues_nothing(page, studio, run, submitted, tmp_path):
    kept = list(studio.outputs.glob(f"{MASK_VIDEOS}/*"))
    not_video = tmp_path / "gradio-upload-9c1d" / "mask.mp4"
    not_video.parent.mkdir()
    not_video.write_text("not a video")
    refused = {
        "background_colour": ({"segment": "person", "background_colour": "green"}, (
            "⚠️ \"background colour\" 'green' is not a colour. Write #RRGGBB (e.g. #00ff00) or blur"
        )),
        "outside without a region": ({"region_edit": "outside"}, (
            '⚠️ an edit outside the region needs a region. Fill in "region word" or "segment", click the first '
            "frame, or upload a mask video"
        )),
        "a background without a region": ({"background_colour": "#00ff00", "background_prompt": "a beach"}, (
            '⚠️ a background and a background prompt need a region. Fill in "region word" or "segment", click '
            "the first frame, or upload a mask video"
        )),
        "two regions": ({"region_word": "man", "segment": "person"}, (
            '⚠️ "region word" and "segment" are given: one region at a time. Clear all but one'
        )),
        "a word and a mask": ({"region_word": "man", "mask_video": "any.mp4"}, (
            '⚠️ "region word" and "mask video" are given: one region at a time. Clear all but one'
        )),
        "two backgrounds": ({"segment": "person", "background_colour": "blur", "background_prompt": "a beach"}, (
            '⚠️ "background" and "background prompt" both replace the background. Keep one'
        )),
        "a background outside": ({"segment": "person", "background_colour": "blur", "region_edit": "outside"}, (
            '⚠️ "edit outside the region" does not apply to a new background (the subject is kept, the background '
            'replaced). Pick "edit inside the region"'
        )),
        "a background prompt and prompts": ({"segment": "person", "background_prompt": "a beach"}, (
            '⚠️ "background prompt" is the edit\'s prompt. Leave "prompts" blank, or clear "background prompt" and '
            'pick "edit outside the region"'
        )),
        "no inversion": ({"segment": "person", "inversion": False}, (
            "⚠️ a region edit keeps the source outside its region from the inverted clip, so it needs the "
            'inversion. Tick "start from the inverted clip"'
        )),
        "a word in no prompt": ({"region_word": "board"}, (
            "⚠️ \"region word\" 'board' is not a word of the source prompt ('a man is surfing') or an edit prompt. "
            "Pick one of their words: a, is, man, panda, surfing"
        )),
        "a text and a click": ({"segment": "person", "segment_point": "3,4"}, (
            '⚠️ both "segment" and "segment point" are given. Clear one: a text, or a click on the frame'
        )),
        "a bad point": ({"segment_point": "left"}, (
            "⚠️ \"segment point\" must be X,Y in the source's pixels, got 'left'. Click the first frame, or write "
            "e.g. 320,180"
        )),
    }  # fmt: skip
    for what, (asked, message) in refused.items():
        assert page.edit(**edit_values(run, **asked)) == message, what
    unreadable = page.edit(**edit_values(run, mask_video=str(not_video)))
    assert unreadable.startswith("⚠️ Cannot read mask.mp4 as a video") and str(tmp_path) not in unreadable
    assert "\n" not in unreadable
    assert submitted == [] and list(studio.outputs.glob(f"{MASK_VIDEOS}/*")) == kept  # nothing queued or kept


def test_the_segmentation_models_are_the_downloaded_ones_else_the_tiny_ones_with_a_notice(tmp_path):
    assert segment_models(tmp_path) == (("tiny", "tiny"), TINY_SEGMENT_NOTICE)
    sam2 = tmp_path / SEGMENT_MODEL.split("/")[1]
    sam2.mkdir()
    (sam2 / "config.json").write_text("{}")  # where download_models.sh --segment puts it
    assert segment_models(tmp_path) == ((str(sam2), "tiny"), TINY_SEGMENT_NOTICE)
    clipseg = tmp_path / SEGMENT_TEXT_MODEL.split("/")[1]
    clipseg.mkdir()
    (clipseg / "config.json").write_text("{}")
    assert segment_models(tmp_path) == ((str(sam2), str(clipseg)), None)


def test_the_mask_preview_is_the_shown_edits_mask_video(page, studio, run):
    edit = studio.outputs / run / "edits" / "e1"
    edit.mkdir(parents=True)
    (edit / CONFIG_FILE).write_text("run: x\nprompts: [a panda is surfing, a bear is surfing]\n")
    for name in ("a-panda-is-surfing", "a-bear-is-surfing"):
        render_scene(edit / f"{name}.mp4", 2, 32, 32, 8.0, audio_channels=0)
    assert edit_mask(page, run, "e1") is None  # an edit of the whole frame has no mask
    for name in ("a-bear-is-surfing", "a-panda-is-surfing"):
        render_scene(edit / f"{name}.mask.mp4", 2, 32, 32, 8.0, audio_channels=0)
    assert edit_mask(page, run, "e1") == str(edit / "a-panda-is-surfing.mask.mp4")  # the first prompt's
    assert edit_mask(page, run, "no-such-edit") is None and edit_mask(page, run, None) is None
