"""The From scratch tab without a browser: what it queues, what it refuses, what it shows.

Its training job is ``python -m vidsynth.scratch train --config FILE`` on a config the tab resolved and
checked (after ``make-data`` for the shapes demo set); its sampling job is ``python -m vidsynth.scratch
sample`` with the labels as typed. The commands parse back to the tab's values; a bad request is one
line in the tab's words and queues nothing; a footage, run or label file is only ever one the app lists
or kept, never a typed path.
"""

import json
import os
import sys
import time
import types

import pytest

from vidsynth.app.handlers import PageHandlers
from vidsynth.app.progress import Progress
from vidsynth.app.scratch import SHAPES
from vidsynth.app.scratch_handlers import SCRATCH_FIELDS, ScratchHandlers
from vidsynth.app.served import servable
from vidsynth.app.service import Studio
from vidsynth.app.ui import build_page
from vidsynth.app.uploads import names_in_use, prune_uploads
from vidsynth.config.loader import load_config, save_config
from vidsynth.media.scene import render_scene
from vidsynth.scratch import generate, train
from vidsynth.scratch.config import ScratchConfig
from vidsynth.scratch.layout import DATA_FILE, WEIGHTS_FILE

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

TRAIN = {"footage": SHAPES, "labels": None, "run_name": "dots", "steps": 30, "learning_rate": 1e-3, "frames": 4}
TRAIN |= {"frame_skip": 1, "seed": 5}
CLASSES = ["down", "left", "right", "up"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("scratch-page")
    (root / "checkpoints").mkdir()
    studio = Studio(root / "outputs", checkpoints=root / "checkpoints")
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def tab(studio) -> ScratchHandlers:
    return ScratchHandlers(PageHandlers(studio), studio.scratch)


@pytest.fixture
def submitted(studio, monkeypatch) -> list:
    """The tasks the tab queues, kept here instead of run."""
    tasks = []

    def submit(task):
        tasks.append(task)
        return types.SimpleNamespace(id=len(tasks), task=task)

    monkeypatch.setattr(studio.queue, "submit", submit)
    return tasks


@pytest.fixture(scope="module")
def trained(studio) -> str:
    """A run that looks trained on the four shape labels (its base weights are only a marker)."""
    run = studio.scratch.runs_folder / "shapes-run"
    (run / "base").mkdir(parents=True)
    (run / "base" / WEIGHTS_FILE).write_bytes(b"")
    config = load_config(ScratchConfig, [], ["data.path=footage", f"output_dir={run}"])
    save_config(config, run / "config.yaml")
    (run / DATA_FILE).write_text(json.dumps({"class_names": CLASSES, "label_dim": None, "fps": 8.0}))
    return run.name


def test_training_on_the_shapes_set_makes_it_then_trains_with_the_tabs_values(tab, studio, submitted):
    assert tab.train(**TRAIN) == "Job 1 queued: train dots from scratch on the shapes demo set, 30 steps"
    (make_label, make), (train_label, command) = submitted[0].begin()
    shapes = studio.outputs / "scratch-data" / "shapes"
    assert (make_label, make[1:]) == ("making the shapes set", ["-m", "vidsynth.scratch", "make-data", "--kind",
                                                                 "shapes", "--out", str(shapes)])  # fmt: skip
    assert (train_label, command[:4]) == ("training", [sys.executable, "-m", "vidsynth.scratch", "train"])
    args = train.parse_args(command[4:])
    assert args.overrides == [] and args.config.startswith(str(studio.outputs / ".queue"))
    cfg = load_config(ScratchConfig, [args.config])
    assert (cfg.data.path, cfg.data.labels) == (str(shapes / "videos"), str(shapes / "labels.csv"))
    assert (cfg.output_dir, cfg.max_train_steps, cfg.learning_rate) == (
        str(studio.outputs / "scratch" / "dots"),
        30,
        1e-3,
    )
    assert (cfg.data.num_frames, cfg.data.frame_skip, cfg.seed) == (4, 1, 5)
    assert [stage.name for stage in cfg.stages] == ["base", "up64"]  # the rest: configs/scratch/shapes.yaml's
    again = type(submitted[0]).from_spec(json.loads(json.dumps(submitted[0].spec())))  # as the queue stores it
    assert (again.form, again.config, again.title) == (submitted[0].form, submitted[0].config, submitted[0].title)
    submitted[0].finish(False)  # a job that ended before training leaves no run and no config
    assert not (studio.outputs / "scratch" / "dots").exists() and not (studio.outputs / args.config).exists()


def test_a_clip_and_its_label_csv_are_checked_kept_and_trained_on(tab, studio, submitted, tmp_path):
    labels = tmp_path / "gradio-upload-1" / "moves.csv"
    labels.parent.mkdir()
    labels.write_text("start,end,label\n0,1,left\n1,2,right\n")
    assert tab.train(**TRAIN | {"footage": "scene.mp4", "labels": str(labels), "run_name": ""}).startswith("Job 1")
    (label, command), = submitted[0].begin()  # fmt: skip
    cfg = load_config(ScratchConfig, [train.parse_args(command[4:]).config])
    kept = studio.outputs / "scratch-labels"
    assert cfg.data.path == str(studio.clips / "scene.mp4") and cfg.data.labels.startswith(str(kept))
    assert (kept / cfg.data.labels.rsplit("/", 1)[1]).read_text() == labels.read_text()  # the app's copy
    assert cfg.output_dir == str(studio.outputs / "scratch" / "scene")  # no run name: the footage's

    labels.write_text("start,end,label\n0,1.5,left\n1,2,right\n")  # overlapping ranges
    overlapping = tab.train(**TRAIN | {"footage": "scene.mp4", "labels": str(labels)})
    assert overlapping.startswith("⚠️ ") and "overlap" in overlapping and str(tmp_path) not in overlapping
    assert "\n" not in overlapping and len(submitted) == 1 and len(list(kept.iterdir())) == 1  # nothing kept


def test_training_problems_are_one_line_in_the_tabs_words_and_queue_nothing(tab, studio, submitted, tmp_path):
    assert tab.train(**TRAIN | {"steps": None}) == '⚠️ "steps" is empty. Enter a number'
    negative = tab.train(**TRAIN | {"learning_rate": -1})
    assert negative.startswith('⚠️ "learning rate" must be positive') and "learning_rate" not in negative
    frames = tab.train(**TRAIN | {"frames": 0})
    assert '"frames per window"' in frames and "num_frames" not in frames
    labels = tmp_path / "moves.csv"
    labels.write_text("0,1,left\n")
    assert tab.train(**TRAIN | {"labels": str(labels)}) == (
        "⚠️ the shapes demo set brings its own labels. Clear the label CSV, or pick a clip"
    )
    for typed in ("/etc/passwd", str(studio.clips / "scene.mp4"), "../clips/scene.mp4", None):
        assert tab.train(**TRAIN | {"footage": typed}).startswith(("⚠️ there is no clip", "⚠️ no clip chosen"))
    (studio.scratch.runs_folder / "taken").mkdir(parents=True)
    assert "already a run 'taken'" in tab.train(**TRAIN | {"run_name": "taken"})
    assert submitted == []


def test_sampling_queues_the_sampler_with_the_typed_labels(tab, studio, submitted, trained):
    assert studio.scratch.runs() == [trained]
    assert tab.sample(trained, "left:4, right:4", 2, 3, 7) == "Job 1 queued: sample shapes-run with left:4,right:4"
    assert tab.sample(trained, "up", 1, 3, 7, guidance=2.5).startswith("Job 2")
    for task in submitted:
        (label, command), = task.begin()  # fmt: skip
        args = generate.parse_args(command[4:])
        assert (label, command[3], args.run, args.num, args.steps, args.seed) == (
            "sampling", "sample", str(studio.scratch.runs_folder / trained), task.form.num, 3, 7,
        )  # fmt: skip
        assert task.output.parent == studio.scratch.runs_folder / trained / "generated" and args.out == str(task.output)
    again = type(submitted[1]).from_spec(json.loads(json.dumps(submitted[1].spec())))
    assert again.form == submitted[1].form
    first, second = (generate.parse_args(task.begin()[0][1][4:]) for task in submitted)
    assert (first.labels, first.label, second.labels, second.label) == ("left:4,right:4", None, None, "up")
    assert (first.guidance, second.guidance) == (1.0, 2.5)


def test_sampling_problems_name_the_fields_and_never_read_a_typed_path(tab, studio, submitted, trained):
    assert tab.sample(trained, "sideways:8", 1, 3, 0) == (
        "⚠️ unknown label 'sideways': the model knows down, left, right, up. Use one of them"
    )
    for typed in ("/etc/passwd", "labels.csv", "left:8,/tmp/x.csv"):
        assert tab.sample(trained, typed, 1, 3, 0).startswith(f"⚠️ labels {typed!r} are not NAME:FRAMES pairs")
    for run in ("../scratch/shapes-run", str(studio.scratch.runs_folder / trained), "nothing", None):
        assert tab.sample(run, "up", 1, 3, 0).startswith(("⚠️ there is no trained run", "⚠️ no run chosen"))
    assert tab.sample(trained, "up", 1, None, 0) == '⚠️ "DDIM steps" is empty. Enter a number'
    assert tab.sample(trained, "up", 1, 3, 0, 0.5) == '⚠️ "guidance" must be 1 (no guidance) or more, got 0.5'
    assert submitted == []


def test_finished_samples_show_their_mp4s_with_their_labels_grid_and_files(tab, studio, trained):
    folder = studio.scratch.runs_folder / trained / "generated" / "20260101-000000"
    folder.mkdir(parents=True)
    for n in range(2):
        render_scene(folder / f"{n}.mp4", 4, 32, 32, 8.0)
    (folder / "grid.gif").write_bytes(b"GIF89a")
    samples = [{"file": "0.mp4", "labels": "left:4"}, {"file": "1.mp4", "labels": "up:4"}]
    (folder / "samples.json").write_text(json.dumps({"samples": samples}))
    assert studio.scratch.samples(trained) == [folder.name] and studio.scratch.samples("../x") == []
    shown = tab.show_samples(trained, folder.name)
    assert (
        shown.videos == [("left:4", folder / "0.mp4"), ("up:4", folder / "1.mp4")] and shown.grid == folder / "grid.gif"
    )
    assert sorted(shown.files) == sorted(str(folder / name) for name in ("0.mp4", "1.mp4", "grid.gif", "samples.json"))
    missing = tab.show_samples(trained, "../../clips")
    assert missing.problem == f"⚠️ run {trained} has no samples '../../clips'. Pick them from the list"


def test_the_training_loss_shows_live_and_every_field_a_message_names_is_on_the_page(studio):
    progress = Progress()
    for event in [
        {"event": "stage", "name": "training", "total": 10, "step": 0, "stage": "base"},
        {"event": "progress", "stage": "training", "step": 3, "total": 10, "eta_s": 7.0, "loss": 0.1234},
    ]:
        progress.update(event)
    assert progress.describe() == "Training step 3/10 · loss 0.1234 · 00:07 left"
    labels = {getattr(block, "label", None) for block in build_page(studio).blocks.values()}
    assert set(SCRATCH_FIELDS) <= labels, set(SCRATCH_FIELDS) - labels


def test_an_old_clip_that_a_from_scratch_run_trains_on_is_not_removed_at_start_up(tmp_path):
    outputs, month_ago = tmp_path / "outputs", time.time() - 31 * 86400
    (outputs / "clips").mkdir(parents=True)
    for name in ("used.mp4", "unused.mp4"):
        (outputs / "clips" / name).write_bytes(b"")
        os.utime(outputs / "clips" / name, (month_ago, month_ago))
    run = outputs / "scratch" / "dash-cam"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"data:\n  path: {outputs / 'clips' / 'used.mp4'}\n")
    removed = prune_uploads([outputs / "clips"], names_in_use(outputs, []), max_age_days=30)
    assert removed == [outputs / "clips" / "unused.mp4"] and (outputs / "clips" / "used.mp4").is_file()


def test_an_unconditional_run_takes_no_labels_and_no_guidance(tab, studio, submitted):
    run = studio.scratch.runs_folder / "no-labels"
    (run / "base").mkdir(parents=True)
    (run / "base" / WEIGHTS_FILE).write_bytes(b"")
    save_config(load_config(ScratchConfig, [], ["data.path=footage", f"output_dir={run}"]), run / "config.yaml")
    (run / DATA_FILE).write_text(json.dumps({"class_names": None, "label_dim": None, "fps": 8.0}))
    labelled = tab.sample("no-labels", "left:8", 1, 3, 0)
    assert labelled == '⚠️ this model was trained without labels. Sample it without "labels"'
    assert tab.sample("no-labels", "", 1, 3, 0, 2) == (
        "⚠️ run no-labels was not trained for guidance (class labels with label_dropout). Set 1"
    )
    assert tab.sample("no-labels", "", 1, 3, 0).startswith("Job 1") and submitted[0].form.labels == ""


def test_of_a_from_scratch_run_the_app_serves_its_samples_only(tmp_path):
    run = tmp_path / "scratch" / "dots"
    served = [run / "generated" / "20260101-000000" / name for name in ("0.mp4", "grid.gif", "samples.json")]
    served.append(run / "samples" / "base-500" / "grid.gif")
    refused = [run / "config.yaml", run / "data.json", run / "base" / "config.json", run / "base" / WEIGHTS_FILE]
    refused += [tmp_path / "scratch" / "edits" / "base" / "config.json", tmp_path / "scratch-labels" / "moves.csv"]
    refused += [run / "checkpoints" / "base" / "checkpoint-5" / "random_states_0.pkl", run / "generated" / "x.mp4"]
    assert [servable(path, tmp_path) for path in served + refused] == [True] * len(served) + [False] * len(refused)
