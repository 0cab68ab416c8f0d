"""The page's logic without a browser or a server: :class:`PageHandlers` called as the page calls it.

What each control shows: the clip's facts and span, the messages of bad input in the page's own words
(its fields' labels, never the command line's keys and flags, an upload by its file name), the
results of an edit. The labels the messages use are the labels the page shows.
"""

import json
import re
import sys
import types

import numpy as np
import pytest
from PIL import Image

from vidsynth import animate
from vidsynth.app.handlers import PageHandlers
from vidsynth.app.service import Studio
from vidsynth.app.ui import build_page
from vidsynth.app.wording import ANIMATE_FIELDS, EDIT_FIELDS, QUEUE_FIELDS, TUNE_FIELDS
from vidsynth.config import AnimateConfig
from vidsynth.media.scene import render_scene
from vidsynth.media.video import read_frames
from vidsynth.run_folder import CONFIG_FILE, RESULT_FILE

# Gradio's own queue metrics trip pandas 3's deprecation warnings; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

SPAN = {"start": 0, "end": None, "stride": 1, "frames": 4, "width": 32, "height": 32, "sampling": "fixed"}
ANIMATE = {"image": None, "video": "clips/scene.mp4", "frame": 0, "model": "tiny", "frames": 4, "seconds": None}
ANIMATE |= {"fps": None, "motion_bucket_id": 127, "noise_aug_strength": 0.02, "steps": 2, "seed": 1}
ANIMATE |= {"decode_chunk_size": None}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    (root / "checkpoints").mkdir()  # no SD-1.x model: the tiny offline one
    studio = Studio(root / "outputs", checkpoints=root / "checkpoints")
    (studio.outputs / "finished").mkdir()
    (studio.outputs / "finished" / RESULT_FILE).write_bytes(b"")  # listed as a finished run
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def page(studio) -> PageHandlers:
    return PageHandlers(studio)


@pytest.fixture(scope="module")
def clip(page, tmp_path_factory) -> str:
    """8 frames of 64x64 uploaded: its name in the clip list."""
    upload = render_scene(tmp_path_factory.mktemp("upload") / "flight.mp4", 8, 64, 64, 8.0)
    return page.upload_clip(str(upload)).name


def flags_and_keys(fields: dict) -> list[str]:
    """The command line's names of the page's fields (those that are not plain words)."""
    return [name for names in fields.values() for name in names if "_" in name or name.startswith("--")]


def in_page_words(message: str, fields: dict, *labels: str) -> bool:
    return all(f'"{label}"' in message for label in labels) and not any(n in message for n in flags_and_keys(fields))


def test_an_upload_shows_the_clip_its_facts_and_a_span_it_holds(page, studio, clip):
    shown = page.pick_clip(clip)
    assert clip in studio.clip_names() and shown.clips == studio.clip_names() and shown.name == clip
    assert shown.preview == str(studio.clips / clip)
    assert "64×64, 8 fps, 8 frames, 1.00 s" in shown.facts
    assert shown.span == {"start": 0, "end": None, "stride": 2, "frames": 4, "width": 512, "height": 512}
    assert shown.span_status.startswith("Span: frames 0 to 6 at stride 2")
    assert page.upload_clip(None) is None  # a cleared upload changes nothing


def test_a_bad_upload_is_named_by_its_file_name_not_its_temporary_path(page, studio, tmp_path):
    upload = tmp_path / "gradio-upload-3f2a" / "notes.mp4"
    upload.parent.mkdir()
    upload.write_text("not a video")
    clips = studio.clip_names()
    shown = page.upload_clip(str(upload))
    assert shown.preview is None and shown.name is None and shown.span is None and shown.span_status == ""
    assert shown.facts.startswith("⚠️ Cannot read notes.mp4 as a video") and "ffmpeg -i notes.mp4" in shown.facts
    assert str(tmp_path) not in shown.facts and "gradio-upload-3f2a" not in shown.facts
    assert "as a video (corrupt, truncated or not a video). If it plays elsewhere" in shown.facts  # named once
    assert studio.clip_names() == clips  # not kept


def test_span_problems_name_the_tune_tabs_fields(page, clip):
    span = list((SPAN | {"frames": 9}).values())
    too_many = page.check_span(clip, *span)
    assert in_page_words(too_many, TUNE_FIELDS, "frames per step") and too_many.startswith(f"⚠️ {clip} has ")
    assert "has 8 frames; from frame 0 at stride 1 that makes 8 frames, but 9 were asked" in too_many
    beyond = page.check_span(clip, *(SPAN | {"end": 20}).values())
    assert in_page_words(beyond, TUNE_FIELDS, "end frame") and 'Set "end frame" to 8 or less' in beyond
    assert "blank for the clip's end" in beyond and "null" not in beyond
    assert page.check_span(clip, *SPAN.values()).startswith("Span: frames 0 to 7 at stride 1")


def test_tune_problems_name_the_tune_tabs_fields(page, studio, clip):
    base = str(studio.models.bases[0])
    values = {"clip": clip, "prompt": "a ball", "run_name": "x", "steps": 2, "learning_rate": 3e-5, "base": base}
    values |= SPAN | {"validation_prompts": "", "validation_steps": 10, "validation_ddim_steps": 2}
    blank_start = page.tune(**values | {"start": None})
    assert blank_start == '⚠️ "start frame" is empty. Enter a number'
    no_steps = page.tune(**values | {"validation_ddim_steps": 0})
    assert (
        in_page_words(no_steps, TUNE_FIELDS, "validation DDIM steps") and 'Set "validation DDIM steps" to 1' in no_steps
    )
    assert in_page_words(page.tune(**values | {"learning_rate": -1}), TUNE_FIELDS, "learning rate")
    assert studio.queue.jobs() == []  # nothing was queued


def test_edit_problems_name_the_edit_tabs_fields(page, studio, tmp_path):
    values = {"run": "finished", "prompts": "a ball", "steps": 2, "guidance": 7.5, "seed": 1, "inversion": True}
    values |= {"method": "tuneavideo", "compare": False, "strength": 0.5, "controls": [], "control_video": None}
    values |= {"controlnets": "", "control_scales": ""}
    no_prompt = page.edit(**values | {"prompts": " \n "})
    assert in_page_words(no_prompt, EDIT_FIELDS, "prompts") and "--prompt" not in no_prompt
    assert no_prompt == '⚠️ no prompt given. Write each edit prompt on a line of its own in "prompts"'
    assert in_page_words(page.edit(**values | {"control_scales": "strong"}), EDIT_FIELDS, "ControlNet scales")
    assert in_page_words(page.edit(**values | {"steps": ""}), EDIT_FIELDS, "DDIM steps")
    assert page.edit(**values | {"run": ""}) == "⚠️ no run chosen. Tune one first, or pick a finished run"
    assert page.cancel(None) == '⚠️ "job to cancel" is empty. Enter a number'
    assert studio.queue.jobs() == []


def test_an_edit_that_is_not_there_is_a_message_and_no_edit_shows_nothing(page):
    assert (
        page.show_edit("finished", "2020-01-01").problem
        == "⚠️ run finished has no edit '2020-01-01'. Pick one from the list"
    )
    empty = page.show_edit("finished", None)
    assert (empty.problem, empty.source, empty.videos, empty.grid, empty.note) == (None, None, [], None, "")
    assert page.edits_of("finished") == [] and page.edits_of("not-a-run") == []


def test_animate_problems_name_the_animate_tabs_fields_and_queue_nothing(page, studio, tmp_path):
    assert page.animate(**ANIMATE | {"frames": 0}) == '⚠️ "frames" must be at least 1, got 0. Use e.g. 14'
    assert page.animate(**ANIMATE | {"fps": 0}) == '⚠️ "fps" must be more than 0, got 0.0. Use e.g. 7'
    assert in_page_words(page.animate(**ANIMATE | {"noise_aug_strength": -1}), ANIMATE_FIELDS, "noise aug strength")
    assert in_page_words(page.animate(**ANIMATE | {"seconds": 2}), ANIMATE_FIELDS, "frames")  # the length twice
    assert page.animate(**ANIMATE | {"steps": None}) == '⚠️ "steps" is empty. Enter a number'
    assert page.animate(**ANIMATE | {"frame": 16}) == (
        "⚠️ scene.mp4 has 16 frames, so frame 16 is not one of them. Pick a frame from 0 to 15"
    )
    not_image = tmp_path / "gradio-upload-9c1d" / "photo.png"
    not_image.parent.mkdir()
    not_image.write_text("not an image")
    unreadable = page.animate(**ANIMATE | {"image": str(not_image), "video": None})
    assert unreadable.startswith("⚠️ photo.png is not an image PIL can read") and str(tmp_path) not in unreadable
    assert page.animate(**ANIMATE | {"video": None}).startswith("⚠️ no still given. Upload an image, or pick")
    assert studio.queue.jobs() == [] and not studio.stills.exists()  # nothing queued, no still kept


def test_animate_takes_only_videos_and_models_from_the_apps_lists(page, studio):
    typed = [str(studio.clips / "scene.mp4"), "/etc/passwd", "clips/../finished/config.yaml", "clips"]
    for video in typed:
        message = page.animate(**ANIMATE | {"video": video})
        assert message == f"⚠️ there is no video {video!r} among the clips and edits. Pick one from the list"
    for model in (str(studio.checkpoints), "stabilityai/stable-video-diffusion-img2vid-xt", None):
        assert page.animate(**ANIMATE | {"model": model}).startswith(f"⚠️ model {model!r} is not one this app offers")
    assert studio.models.animators == ["tiny"] and "random weights" in studio.models.animator_notice
    assert studio.queue.jobs() == []


@pytest.fixture
def submitted(studio, monkeypatch) -> list:
    """The tasks the page queues, kept here instead of run."""
    tasks = []

    def submit(task):
        tasks.append(task)
        return types.SimpleNamespace(id=len(tasks), task=task)

    monkeypatch.setattr(studio.queue, "submit", submit)
    return tasks


def test_animate_queues_animate_on_a_frame_of_an_edit_with_the_chosen_settings(page, studio, submitted):
    run = studio.outputs / "edited"
    edit = run / "edits" / "e1"
    edit.mkdir(parents=True)
    (run / RESULT_FILE).write_bytes(b"")
    (edit / CONFIG_FILE).write_text("run: x\n")
    render_scene(edit / "a-ball.mp4", 6, 64, 48, 8.0)
    (edit / "a-ball.json").write_text(json.dumps({"prompt": "a ball"}))
    render_scene(edit / "compare-a-ball.mp4", 6, 64, 48, 8.0)  # no sidecar: not an edit, not offered
    sources = studio.frame_sources()
    assert sources == [f"clips/{name}" for name in studio.clip_names()] + ["edited/edits/e1/a-ball.mp4"]

    chosen = {"video": "edited/edits/e1/a-ball.mp4", "frame": 2, "frames": 5, "fps": 8, "motion_bucket_id": 90}
    chosen |= {"noise_aug_strength": 0.1, "steps": 3, "seed": 7, "decode_chunk_size": 2}
    assert re.fullmatch(r"Job 1 queued: animate a-ball-frame2-[0-9a-f]{10}\.png", page.animate(**ANIMATE | chosen))
    (label, (python, dash_m, module, *flags)), (_, metrics) = submitted[0].begin()
    assert (label, python, dash_m, module) == ("animating", sys.executable, "-m", "vidsynth.animate")
    config = animate.resolve_config(animate.parse_args(flags))
    settings = {"num_frames": 5, "fps": 8.0, "motion_bucket_id": 90, "noise_aug_strength": 0.1}
    settings |= {"num_inference_steps": 3, "seed": 7, "decode_chunk_size": 2, "out": str(submitted[0].output)}
    assert config == AnimateConfig(image=config.image, model="tiny", **settings)
    still = studio.stills / config.image.rsplit("/", 1)[-1]
    assert config.image == str(still) and still.parent == studio.stills  # the app's copy of the frame, nothing typed
    assert np.array_equal(np.asarray(Image.open(still)), read_frames(edit / "a-ball.mp4", [2])[0])
    assert submitted[0].output.parent == studio.outputs / "animations" and not submitted[0].output.exists()
    assert metrics[-4:] == ["vidsynth.evaluate", str(submitted[0].output), "--clip-model", studio.models.clip_model]


def test_every_field_a_message_names_is_a_field_the_page_shows(studio):
    page = build_page(studio)
    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    named = set(TUNE_FIELDS) | set(EDIT_FIELDS) | set(QUEUE_FIELDS) | set(ANIMATE_FIELDS)
    assert named <= labels, named - labels
