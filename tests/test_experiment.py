"""Experiments end to end on the tiny model: clips x settings x prompts, one table, resumable, locally and on Ray."""

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.evaluation import metrics
from vidsynth.experiment import runner
from vidsynth.experiment.__main__ import main
from vidsynth.experiment.cells import Outcome
from vidsynth.experiment.config import load_experiment
from vidsynth.experiment.lock import lock_folder
from vidsynth.experiment.plan import UNTUNED, make_plan
from vidsynth.experiment.stage import StageResult
from vidsynth.experiment.table import random_clip_note
from vidsynth.media.scene import render_scene
from vidsynth.run_folder import RunFolder
from vidsynth.testing.tiny_clip import build_tiny_clip

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["a red ball flies", "a blue ball flies"]
FAST_TRAIN = {
    "train_data": {"n_sample_frames": 4, "width": 32, "height": 32},
    "max_train_steps": 2,
    "checkpointing_steps": 100,
    "learning_rate": 1e-3,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [
        render_scene(folder / "ball.mp4", num_frames=12, width=48, height=48, audio_channels=2),
        render_scene(folder / "ball-silent.mp4", num_frames=12, width=48, height=48, audio_channels=0, seed=1),
    ]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"), seed=0)


@pytest.fixture(scope="module")
def still(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("still") / "product.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 80, 3), dtype=np.uint8)).save(path)
    return path


def write_experiment(path: Path, tiny_sd: Path, tiny_clip: Path, videos: list[Path], grid: dict, **changes) -> Path:
    experiment = {
        "clips": [{"video": str(video), "prompt": "a ball flies", "edits": PROMPTS} for video in videos],
        "train": {"pretrained_model_path": str(tiny_sd), **FAST_TRAIN},
        "edit": {"num_inference_steps": 2, "inversion_steps": 2},
        "grid": grid,
        "clip_model": str(tiny_clip),
        "out": str(path.parent / "experiment"),
        **changes,
    }
    path.write_text(yaml.safe_dump(experiment))
    return path


def read_rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def runs_of(out: Path) -> list[list[str]]:
    """experiment.log split into runs: the event lines of each invocation (timestamps dropped)."""
    runs = []
    for line in (out / "experiment.log").read_text().splitlines():
        event = line.split(" ", 2)[2]
        if event.startswith("experiment "):
            runs.append([])
        else:
            runs[-1].append(event)
    return runs


def finished_files(out: Path) -> dict[Path, int]:
    """The file each job writes last (train.py's result, cell.json), with its modification time."""
    files = [*out.glob("cells/*/*/tuned_unet.safetensors"), *out.glob("cells/*/*/edits/*/cell.json")]
    return {path: path.stat().st_mtime_ns for path in files}


def test_local_experiment_tables_every_cell_resumes_and_records_a_failing_clip(
    tmp_path, tiny_sd, tiny_clip, clips, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # any import of Ray without --ray fails this test
    # Scoring runs in each cell's own process: a CLIP model loaded here, in the driver, fails this test.
    monkeypatch.setattr(metrics.ClipScorer, "__init__", lambda *args, **kwargs: pytest.fail("CLIP in the driver"))
    missing = tmp_path / "no-such-clip.mp4"
    grid = {"edit.guidance_scale": [1.0, 4.0]}
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, [*clips, missing], grid)
    out = tmp_path / "experiment"

    with pytest.raises(VidSynthError, match="2 of 6 cells failed"):
        main([str(config)])

    rows = read_rows(out)
    assert len(rows) == 3 * 2 * 2  # clips x settings x prompts
    cells = {(row["clip"], row["edit.guidance_scale"], row["prompt"]) for row in rows}
    names = ("ball", "ball-silent", "no-such-clip")
    assert cells == {(c, g, p) for c in names for g in ("1.0", "4.0") for p in PROMPTS}
    for row in rows:
        if row["clip"] == "no-such-clip":
            assert "Video file not found" in row["error"] and str(missing) in row["error"]
            assert row["text_alignment"] == ""
        else:
            assert row["error"] == "" and row["method"] == "tuneavideo"
            assert 0 < float(row["consistency_all_pairs"]) <= 100.0 + 1e-6
            assert float(row["tune_s"]) > 0 and float(row["edit_s"]) > 0 and float(row["peak_ram_gib"]) > 0
            assert Path(row["video"]).is_file()
    # One tuning per clip, shared by both guidance settings; the failing clip never started a process.
    first = runs_of(out)[0]
    assert sum(e.startswith("tune") and "done" in e for e in first) == 2
    assert sum(e.startswith("edit") and "done" in e for e in first) == 4
    summary = (out / "results.md").read_text()
    assert "| guidance_scale=1.0 | tuneavideo | 2 | 1 |" in summary
    # The tiny CLIP has random weights: the table and the plot say its numbers are noise.
    assert "CLIP model with random weights: consistency, text alignment and image alignment are noise" in summary
    with Image.open(out / "plots" / "edit.guidance_scale.png") as plot:
        assert plot.format == "PNG" and "CLIP model with random weights" in plot.info["Description"]

    # The same command again: every finished cell is skipped (no process runs, nothing is rewritten).
    before = finished_files(out)
    assert len(before) == 2 + 4
    with pytest.raises(VidSynthError, match="2 of 6 cells failed"):
        main([str(config)])
    second = runs_of(out)[1]
    assert not [event for event in second if "done in" in event]
    assert sum("finished, skipped" in event for event in second) == 6
    assert finished_files(out) == before
    assert read_rows(out) == rows

    # One cell's results deleted: only that cell is edited again, from the tuning that is there.
    redo = next(path for path in before if path.name == "cell.json")
    redo.unlink()
    with pytest.raises(VidSynthError, match="2 of 6 cells failed"):
        main([str(config)])
    third = [event for event in runs_of(out)[2] if "done in" in event]
    assert len(third) == 1 and third[0].startswith(f"edit {redo.parent.relative_to(out / 'cells').as_posix()}:")
    after = finished_files(out)
    assert after[redo] != before[redo]
    assert {p: t for p, t in after.items() if p != redo} == {p: t for p, t in before.items() if p != redo}


def test_ray_local_runs_the_grid_as_tasks(tmp_path, tiny_sd, tiny_clip, tiny_svd, clips, still):
    """A train.* grid over Ray: full tuning against LoRA rank 4 (YAML ``[null, 4]``), with their result sizes."""
    grid = {"train.lora_rank": [None, 4]}
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, clips, grid)
    text = yaml.safe_load(config.read_text())
    text["clips"].append({"image": str(still)})  # one animation: the train.* grid does not multiply it
    text["animate"] = {"model": str(tiny_svd), "num_inference_steps": 2}
    config.write_text(yaml.safe_dump(text))
    assert "- null" in config.read_text()
    out = tmp_path / "experiment"
    command = [sys.executable, "-m", "vidsynth.experiment", str(config), "--ray", "local", "--cpus-per-cell", "1"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rows = read_rows(out)
    (animation,) = [row for row in rows if row["clip"] == "product"]
    assert (animation["kind"], animation["train.lora_rank"], animation["error"]) == ("animation", "", "")
    assert float(animation["image_alignment"]) == float(animation["image_alignment"])  # scored, not NaN
    rows.remove(animation)
    assert len(rows) == 2 * 2 * 2
    assert {(r["clip"], r["setting"], r["train.lora_rank"], r["prompt"]) for r in rows} == {
        (c, f"lora_rank={label}", value, p)
        for c in ("ball", "ball-silent")
        for label, value in (("null", ""), ("4", "4"))
        for p in PROMPTS
    }
    assert all(row["error"] == "" and float(row["text_alignment"]) == float(row["text_alignment"]) for row in rows)
    events = runs_of(out)[0]
    assert sum(e.startswith("tune") and "done" in e for e in events) == 4  # one per clip x rank
    assert sum(e.startswith("edit") and "done" in e for e in events) == 4
    assert sum(e.startswith("animate") and "done" in e for e in events) == 1
    assert "| lora_rank=null | tuneavideo | 2 | 0 |" in proc.stdout  # the summary, printed
    assert "result MB" in (out / "results.md").read_text()
    for clip in ("ball", "ball-silent"):  # each tuning's result size: recorded, tabled, and LoRA's the smaller
        full, lora = (next((out / "cells" / clip).glob(f"lora_rank={rank}-*")) for rank in ("null", "4"))
        assert not (full / "pytorch_lora_weights.safetensors").exists()
        assert (lora / "pytorch_lora_weights.safetensors").is_file()
        sizes = []
        for folder, rank in ((full, ""), (lora, "4")):
            (size,) = {float(r["result_mb"]) for r in rows if r["clip"] == clip and r["train.lora_rank"] == rank}
            recorded = json.loads((folder / "tune.json").read_text())["result_mb"]
            assert size == pytest.approx(recorded) == pytest.approx(RunFolder(folder).result_bytes() / 1e6)
            sizes.append(recorded)
        assert 0 < sizes[1] < sizes[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clip_modle": "x"}, "unknown config key 'clip_modle'.*Did you mean 'clip_model'"),
        ({"train": {"learning_rat": 1e-4}}, "unknown config key 'learning_rat'.*Did you mean 'learning_rate'"),
        ({"edit": {"guidanse": 3.0}}, "unknown config key 'guidanse'.*Did you mean 'guidance'"),
        ({"grid": {"edit.stepz": [1, 2]}}, "unknown config key 'stepz' in grid.*Did you mean 'steps'"),
        ({"grid": {"learning_rate": [1, 2]}}, "grid key 'learning_rate' must name.*train.KEY, edit.KEY or animate.KEY"),
        (
            {"grid": {"animate.motion_bucket": [60, 127]}},
            r"unknown config key 'motion_bucket' in grid \(animate.motion_bucket=60\).*Did you mean 'motion_bucket_id'",
        ),
        (
            {"animate": {"noise_aug": 0.1}},
            "unknown config key 'noise_aug' in the experiment's animate keys. Did you mean 'noise_aug_strength'",
        ),
        ({"animate": {"image": "other.png"}}, "animate key 'image' in the experiment's animate keys is set per cell"),
        ({"clips": [{"image": "a.png", "prompt": "x"}]}, "clip entry image a.png has prompt: a still is animated"),
        ({"clips": [{"video": "a.mp4", "image": "a.png"}]}, "a clip entry gives both video and image"),
        ({"clips": [{"name": "x"}]}, "a clip entry gives neither video nor image"),
        ({"clips": [{"image": "a.png"}], "animate": {"model": "no-such-svd"}}, "image-to-video model no-such-svd"),
        ({"grid": {"train.learning_rate": []}}, "grid entry train.learning_rate must be a non-empty list of values"),
        (
            {"grid": {"train.learning_rate": 1e-4}},
            r"grid entry train.learning_rate must be a non-empty list of values, e.g. train.learning_rate: \[0.0001",
        ),
        (
            {"grid": {"train.learning_rate": ["fast", 1e-4]}},
            r"config key 'learning_rate' in grid \(train.learning_rate=fast\) must be a number; got 'fast'",
        ),
        (
            {"grid": {"edit.guidance_scale": [[1, 2]]}},
            r"'guidance_scale' in grid \(.*\) must be a number; got \[1, 2\]",
        ),
        (
            {"edit": {"num_inference_steps": "many"}},
            "'num_inference_steps' in the experiment's edit keys must be a whole",
        ),
        ({"edit": 5}, "config key 'edit' in .* must be a mapping of keys to values; got 5"),
        ({"clips": [{"video": "a.mp4", "promt": "x", "edits": ["y"]}]}, "'promt'.*Did you mean 'prompt'"),
        ({"clips": [{"video": "a.mp4", "prompt": "x", "edits": []}]}, "has no edit prompts"),
        ({"edit": {"video": "other.mp4"}}, "editing key 'video'.*is set per cell"),
        ({"clip_model": "no/such-clip-model"}, "hub for the CLIP model no/such-clip-model .*hf download no/such-clip"),
        (
            {"grid": {"edit.segment": ["person"]}},
            r"hub for the segmentation model facebook/sam2.1-hiera-tiny \(HF_HUB_OFFLINE is set\).*--segment",
        ),
        (
            {"grid": {"edit.segment": ["person"]}, "edit": {"segment_model": "tiny"}},
            r"hub for the segmentation text model CIDAS/clipseg-rd64-refined \(HF_HUB_OFFLINE is set\)",
        ),
    ],
)
def test_bad_experiment_file_fails_before_anything_runs(tmp_path, tiny_sd, clips, change, message):
    experiment = {
        "clips": [{"video": str(clips[0]), "prompt": "a ball", "edits": PROMPTS}],
        "train": {"pretrained_model_path": str(tiny_sd)},
        "grid": {"edit.guidance_scale": [1.0, 2.0]},
        "out": str(tmp_path / "experiment"),
    }
    for key, value in change.items():
        experiment[key] = (
            {**experiment.get(key, {}), **value} if isinstance(value, dict) and key in ("train", "edit") else value
        )
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump(experiment))
    with pytest.raises(VidSynthError, match=message) as err:
        main([str(config)])
    assert "typing" not in str(err.value) and "\n" not in str(err.value)  # words, on one line
    assert not (tmp_path / "experiment").exists()


def test_cell_size_flags_need_ray(tmp_path):
    with pytest.raises(VidSynthError, match="--gpus-per-cell and --cpus-per-cell size Ray tasks"):
        main([str(tmp_path / "any.yaml"), "--gpus-per-cell", "1"])


def test_ray_refuses_cells_larger_than_the_cluster(tmp_path, tiny_sd, tiny_clip, clips):
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, clips, {})
    command = [sys.executable, "-m", "vidsynth.experiment", str(config), "--ray", "local", "--gpus-per-cell", "1"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "each cell asks for 1 GPU(s) but the Ray cluster has 0. Lower --gpus-per-cell" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "experiment").exists()


def wait_for(condition, what: str, timeout: float = 300.0):
    """Poll ``condition`` until it returns something true (returned), failing the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def stage_children(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "vidsynth.experiment.stage" in " ".join(child.cmdline())]


def test_a_killed_experiment_takes_its_running_stage_with_it_and_a_second_run_is_refused_meanwhile(
    tmp_path, tiny_sd, tiny_clip, clips
):
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, clips[:1], {})
    text = yaml.safe_load(config.read_text())
    text["train"].update(max_train_steps=10**6, checkpointing_steps=10**6)  # a tuning that would run for hours
    config.write_text(yaml.safe_dump(text))
    out = tmp_path / "experiment"
    command = [sys.executable, "-m", "vidsynth.experiment", str(config)]
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (stage,) = wait_for(lambda: stage_children(driver.pid), "the tuning stage to start")
        assert os.getpgid(stage.pid) == stage.pid  # a process group of its own

        # While it runs, a second run on the same folder is refused, naming the running one.
        with pytest.raises(VidSynthError, match=rf"experiment is already running in .*experiment \(pid {driver.pid}\)"):
            main([str(config)])

        driver.kill()  # SIGKILL: the experiment runs no clean-up at all
        driver.wait(timeout=30)
        wait_for(lambda: not stage.is_running() or stage.status() == psutil.STATUS_ZOMBIE, "the stage to end", 60)
    finally:
        driver.kill()
    lock_folder(out).close()  # the killed run's lock went with it: a rerun may start


def test_any_exception_of_a_job_is_that_cells_failure_and_the_others_go_on(
    tmp_path, tiny_sd, tiny_clip, clips, monkeypatch
):
    calls = []

    def tune(job):
        return Outcome("done", StageResult(1.0, None, None, None))

    def edit(job, clip_model):
        calls.append(job.folder)
        if len(calls) == 1:
            raise KeyError("an unexpected bug")
        return Outcome("failed", StageResult(1.0, None, None, "an ordinary failure"), "an ordinary failure")

    monkeypatch.setattr(runner, "tune", tune)
    monkeypatch.setattr(runner, "edit", edit)
    grid = {"edit.guidance_scale": [1.0, 4.0]}
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, clips, grid)
    with pytest.raises(VidSynthError, match="4 of 4 cells failed"):
        main([str(config)])
    assert len(calls) == 4  # every edit job ran
    errors = [row["error"] for row in read_rows(tmp_path / "experiment")]
    assert errors.count("KeyError: 'an unexpected bug'") == 2  # the cell's two prompts
    assert errors.count("an ordinary failure") == 6
    log = (tmp_path / "experiment" / "experiment.log").read_text()
    assert "Traceback" in log and "an unexpected bug" in log


def test_an_unreachable_ray_address_fails_at_once_with_the_fix(tmp_path, tiny_sd, tiny_clip, clips):
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tiny_clip, clips, {})
    command = [sys.executable, "-m", "vidsynth.experiment", str(config), "--ray", "127.0.0.1:1"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "127.0.0.1:1" in line and "ray start --head" in line
    assert not (tmp_path / "experiment").exists()


@pytest.mark.parametrize(
    ("grid", "change", "message"),
    [
        ({}, {"clip_modle": "x"}, "unknown config key 'clip_modle'"),
        ({"train.learning_rate": ["fast"]}, {}, r"in grid \(train.learning_rate=fast\) must be a number"),
        ({"train.learning_rate": 1e-4}, {}, "grid entry train.learning_rate must be a non-empty list of values"),
        ({"animate.motion_bucket": [60]}, {}, "unknown config key 'motion_bucket'.*Did you mean 'motion_bucket_id'"),
    ],
)
def test_experiment_config_errors_come_before_torch_or_ray_is_imported(tmp_path, tiny_sd, clips, grid, change, message):
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tmp_path, clips, grid, **change)
    script = (
        "import sys\n"
        "from vidsynth.errors import VidSynthError\n"
        "from vidsynth.experiment.__main__ import main\n"
        "try:\n"
        f"    main([{str(config)!r}])\n"
        "except VidSynthError as err:\n"
        "    print(err)\n"
        "print(sorted(name for name in ('torch', 'ray', 'diffusers') if name in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    error, modules = proc.stdout.strip().splitlines()
    assert re.search(message, error) and modules == "[]", proc.stdout + proc.stderr


def test_a_default_clip_model_off_the_network_fails_in_seconds_with_one_line(tmp_path, tiny_sd, clips):
    config = write_experiment(tmp_path / "experiment.yaml", tiny_sd, tmp_path, clips, {})
    text = yaml.safe_load(config.read_text())
    del text["clip_model"]  # the default: openai/clip-vit-large-patch14, on the hub
    config.write_text(yaml.safe_dump(text))
    env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:1", HF_HOME=str(tmp_path / "hf"))  # no hub, an empty cache
    command = [sys.executable, "-m", "vidsynth.experiment", str(config)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "openai/clip-vit-large-patch14" in line and "http://127.0.0.1:1 does not answer" in line
    assert "hf download openai/clip-vit-large-patch14" in line
    assert not (tmp_path / "experiment").exists()


def test_plan_shares_tunings_dedupes_the_baseline_and_renames_changed_settings(tmp_path, tiny_sd, clips):
    clips_csv = tmp_path / "clips.csv"
    clips_csv.write_text(
        "video,prompt,edits,n_sample_frames\n"
        f"{clips[0]},a ball,a red ball | a blue ball,4\n"
        f"{clips[1]},a ball,a green ball,6\n"
    )
    grid = {"train.learning_rate": [1e-4, 3e-4], "edit.method": ["tuneavideo", "img2img"]}
    config = write_experiment(tmp_path / "e.yaml", tiny_sd, tmp_path, [], grid, clips=str(clips_csv))
    experiment, entries = load_experiment(config)
    assert [e.edits for e in entries] == [["a red ball", "a blue ball"], ["a green ball"]]
    plan = make_plan(experiment, entries)

    assert len(plan.cells) == 2 * 4
    tuned = [t for t in plan.tunings if t.config is not None]
    assert len(tuned) == 2 * 2  # clip x learning rate; the img2img cells need none
    assert {t.config.learning_rate for t in tuned} == {1e-4, 3e-4}
    assert [t.config.train_data.n_sample_frames for t in tuned] == [4, 4, 6, 6]
    baseline = [e for e in plan.edits if e.tuning.folder.name == UNTUNED]
    assert len(baseline) == 2  # one per clip: the learning rate does not change an img2img edit
    assert len(plan.edits) == 2 * 2 + 2
    first = baseline[0].config
    assert (first.base, first.video, first.num_frames, first.width) == (str(tiny_sd), str(clips[0]), 4, 32)
    for edit in plan.edits:
        if edit.tuning.config is not None:
            assert edit.config.run == str(edit.tuning.folder) and edit.folder.parent.parent == edit.tuning.folder

    # A changed tuning setting outside the grid makes new tuning folders; the editing folders' names stay.
    changed = write_experiment(tmp_path / "f.yaml", tiny_sd, tmp_path, [], grid, clips=str(clips_csv))
    text = yaml.safe_load(changed.read_text())
    text["train"]["max_train_steps"] = 3
    changed.write_text(yaml.safe_dump(text))
    other = make_plan(*load_experiment(changed))
    assert not {t.folder for t in tuned} & {t.folder for t in other.tunings}
    assert {e.folder.name for e in plan.edits} == {e.folder.name for e in other.edits}


def test_example_experiment_plans_the_original_clips_and_prompts():
    experiment, entries = load_experiment(REPO / "configs" / "experiments" / "example.yaml")
    plan = make_plan(experiment, entries)
    assert [Path(e.video).name for e in entries] == ["car-turn.mp4", "man-surfing.mp4"]
    assert "a jeep car is moving on the snow" in entries[0].edits and "a panda is surfing" in entries[1].edits
    settings = 1
    for values in experiment.grid.values():
        settings *= len(values)
    assert len(plan.cells) == 2 * settings


def test_only_a_clip_model_marked_random_gets_the_note(tiny_clip, tmp_path):
    assert random_clip_note(str(tiny_clip)).startswith("CLIP model with random weights")
    assert random_clip_note(str(tmp_path)) is None  # a folder without the mark
    assert random_clip_note("openai/clip-vit-large-patch14") is None


def test_image_entries_take_only_the_animate_grid_and_video_entries_only_the_others(
    tmp_path, tiny_sd, tiny_svd, clips, still
):
    clips_csv = tmp_path / "clips.csv"
    clips_csv.write_text(f"video,prompt,edits,image\n{clips[0]},a ball,a red ball,\n,,,{still}\n")
    grid = {"train.learning_rate": [1e-4, 3e-4], "animate.motion_bucket_id": [60, 127], "animate.fps": [4, 7]}
    animate = {"model": str(tiny_svd), "steps": 2}
    config = write_experiment(tmp_path / "e.yaml", tiny_sd, tmp_path, [], grid, clips=str(clips_csv), animate=animate)
    plan = make_plan(*load_experiment(config))

    videos = [cell for cell in plan.cells if cell.clip == "ball"]
    images = [cell for cell in plan.cells if cell.clip == "product"]
    assert len(plan.cells) == 2 + 4 == len(videos) + len(images)  # 2 learning rates; 2 buckets x 2 frame rates
    assert [set(cell.setting) for cell in videos] == [{"train.learning_rate"}] * 2
    assert [cell.edit.kind for cell in videos] == ["edit"] * 2
    settings = [(c.setting["animate.motion_bucket_id"], c.setting["animate.fps"]) for c in images]
    assert sorted(settings) == [(60, 4), (60, 7), (127, 4), (127, 7)]
    assert images[0].label == "fps=4, motion_bucket_id=60"  # the grid's keys in the file's order
    for cell, (bucket, fps) in zip(images, settings, strict=True):
        job = cell.edit
        assert job.kind == "animate" and job.tuning.config is None  # nothing to tune
        assert (job.config.motion_bucket_id, job.config.fps) == (bucket, fps)
        assert (job.config.image, job.config.model, job.config.num_inference_steps) == (str(still), str(tiny_svd), 2)
        assert job.config.out == str(job.folder) and job.folder.parent == plan.out / "cells" / "product" / "animations"
    assert len({cell.edit.folder for cell in images}) == 4
    assert len(plan.tunings) == 2 + 1  # the clip's two tunings; the still's (empty) one


def test_region_grid_keys_make_a_cell_per_value_and_a_misspelt_one_is_refused(tmp_path, tiny_sd, clips, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save("beach.png")  # a background file, named from this folder
    grid = {"edit.segment": ["person", "face"], "edit.background": ["#00ff00", "blur", "beach.png"]}
    plan = make_plan(*load_experiment(write_experiment(tmp_path / "e.yaml", tiny_sd, tmp_path, clips[:1], grid)))
    assert len(plan.cells) == 2 * 3 and len(plan.tunings) == 1  # one tuning edited six ways
    values = [(cell.edit.config.segment, cell.edit.config.background) for cell in plan.cells]
    backgrounds = ["#00ff00", "blur", str(tmp_path / "beach.png")]  # a file made absolute: cells run anywhere
    assert sorted(values) == sorted(
        (segment, background) for segment in ("person", "face") for background in backgrounds
    )
    assert (
        len({cell.edit.folder for cell in plan.cells}) == 6
        and plan.cells[0].label == "background=#00ff00, segment=person"
    )
    assert all(cell.edit.config.prompts == PROMPTS for cell in plan.cells)

    grid = {"edit.region": ["ball", "flies"], "edit.region_edit": ["inside", "outside"]}
    plan = make_plan(*load_experiment(write_experiment(tmp_path / "w.yaml", tiny_sd, tmp_path, clips[:1], grid)))
    words = sorted((cell.edit.config.region, cell.edit.config.region_edit) for cell in plan.cells)
    assert words == [("ball", "inside"), ("ball", "outside"), ("flies", "inside"), ("flies", "outside")]

    for grid, message in (
        ({"edit.regon": ["ball"]}, "'regon'.*Did you mean 'region'"),
        ({"edit.background": ["#00ff00"]}, "--background needs a region"),
        ({"edit.segment": ["person"], "edit.background": ["#0f0"]}, "--background colour '#0f0' does not parse"),
    ):
        with pytest.raises(VidSynthError, match=message):
            make_plan(*load_experiment(write_experiment(tmp_path / "bad.yaml", tiny_sd, tmp_path, clips[:1], grid)))


def test_an_image_entry_is_animated_per_motion_bucket_scored_and_a_bad_still_fails_alone(
    tmp_path, tiny_svd, tiny_clip, still, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr(metrics.ClipScorer, "__init__", lambda *args, **kwargs: pytest.fail("CLIP in the driver"))
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    experiment = {
        "clips": [{"image": str(still)}, {"image": str(text)}],
        "animate": {"model": str(tiny_svd), "num_inference_steps": 2},
        "grid": {"animate.motion_bucket_id": [60, 127]},
        "clip_model": str(tiny_clip),
        "out": str(tmp_path / "experiment"),
    }
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump(experiment))

    with pytest.raises(VidSynthError, match="2 of 4 cells failed"):
        main([str(config)])

    rows = read_rows(tmp_path / "experiment")
    good = [row for row in rows if row["clip"] == "product"]
    assert sorted(row["animate.motion_bucket_id"] for row in good) == ["127", "60"]
    for row in good:
        assert row["error"] == "" and (row["kind"], row["method"], row["prompt"]) == ("animation", "svd", "")
        assert row["text_alignment"] == "" and -100.0 <= float(row["image_alignment"]) <= 100.0
        assert float(row["flicker"]) >= 0 and float(row["animate_s"]) > 0 and row["edit_s"] == ""
        sidecar = json.loads(Path(row["video"]).with_suffix(".json").read_text())
        assert sidecar["motion_bucket_id"] == int(row["animate.motion_bucket_id"])
        assert sidecar["image"]["path"] == str(still)
    bad = [row for row in rows if row["clip"] == "notes"]
    assert len(bad) == 2 and all("is not an image PIL can read" in row["error"] for row in bad)
    assert all((row["kind"], row["method"]) == ("animation", "svd") for row in bad)
    assert not (tmp_path / "experiment" / "cells" / "notes" / "animations").exists()  # refused before a process
    summary = (tmp_path / "experiment" / "results.md").read_text()
    assert "| motion_bucket_id=60 | svd | 1 | 1 |" in summary and "image alignment" in summary
    assert (tmp_path / "experiment" / "plots" / "animate.motion_bucket_id.png").is_file()
    assert sum("done in" in event and event.startswith("animate") for event in runs_of(tmp_path / "experiment")[0]) == 2
