"""The page's logic without a browser or a server: :class:`PageHandlers` called as the page calls it.

What each control shows: the clip's facts and span, the messages of bad input in the page's own words
(its fields' labels, never the command line's keys and flags, an upload by its file name), the
results of an edit. The labels the messages use are the labels the page shows.
"""

import pytest

from vidsynth.app.handlers import PageHandlers
from vidsynth.app.service import Studio
from vidsynth.app.ui import build_page
from vidsynth.app.wording import EDIT_FIELDS, QUEUE_FIELDS, TUNE_FIELDS
from vidsynth.media.scene import render_scene
from vidsynth.run_folder import RESULT_FILE

# Gradio's own queue metrics trip pandas 3's deprecation warnings; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

SPAN = {"start": 0, "end": None, "stride": 1, "frames": 4, "width": 32, "height": 32, "sampling": "fixed"}


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


def test_every_field_a_message_names_is_a_field_the_page_shows(studio):
    page = build_page(studio)
    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    named = set(TUNE_FIELDS) | set(EDIT_FIELDS) | set(QUEUE_FIELDS)
    assert named <= labels, named - labels
