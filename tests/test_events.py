"""The commands' event stream (``VIDSYNTH_EVENTS``): what a short tuning run on the tiny model writes, and an error."""

import json
import logging
import subprocess
from pathlib import Path
from unittest.mock import ANY

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState

from vidsynth import events, train
from vidsynth.cli import _Formatter, run_main
from vidsynth.commands import child_env, command
from vidsynth.media.scene import render_scene

STEPS = 3


@pytest.fixture
def stream(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv(events.ENV, str(path))
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tuning_config(tmp_path: Path, tiny_sd: Path, clip: Path | None = None) -> Path:
    """3 steps on 2 frames of 32x32, a validation edit (2 DDIM steps) at the last step."""
    clip = clip or render_scene(tmp_path / "clip.mp4", num_frames=8, width=32, height=32)
    validation = {"prompts": ["a red ball"], "video_length": 2, "width": 32, "height": 32}
    config = {
        "pretrained_model_path": str(tiny_sd),
        "output_dir": str(tmp_path / "run"),
        "train_data": {"video_path": str(clip), "prompt": "a ball", "n_sample_frames": 2, "width": 32, "height": 32},
        "validation_data": validation | {"num_inference_steps": 2, "num_inv_steps": 2},
        "max_train_steps": STEPS,
        "validation_steps": STEPS,
        "gradient_checkpointing": False,
    }
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_train(argv: list[str]) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train.main(argv)
    finally:
        torch.set_num_threads(threads)
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def test_a_short_tuning_run_writes_every_step_its_validation_sample_and_its_result(tmp_path, tiny_sd, stream):
    result = run_train(["--config", str(tuning_config(tmp_path, tiny_sd))])

    written = read(stream)
    kinds = [event["event"] for event in written]
    assert kinds[-1] == "done" and written[-1]["output"] == str(result)
    assert {"event": "stage", "name": "tuning", "total": STEPS, "step": 0}.items() <= written[0].items()
    steps = [event for event in written if event["event"] == "progress" and event["stage"] == "tuning"]
    assert [event["step"] for event in steps] == list(range(1, STEPS + 1))
    assert all(event["total"] == STEPS and event["loss"] > 0 for event in steps)
    assert all(event["eta_s"] >= 0 for event in steps) and steps[-1]["eta_s"] == 0
    # the validation at the last step: its stage holds the prompt's inversion and sampling steps; then its sample
    validation = next(i for i, event in enumerate(written) if event.get("name") == "validation")
    assert written[validation]["tuning_step"] == STEPS
    inner = written[validation : written.index({"event": "stage_end", "name": "validation"} | {"time": ANY})]
    for stage in ("inversion", "sampling"):
        assert [e["step"] for e in inner if e.get("stage") == stage] == [1, 2]
    assert [e["step"] for e in inner if e.get("stage") == "prompts"] == [1]
    sample = next(event for event in written if event["event"] == "sample")
    assert (
        sample["step"] == STEPS and Path(sample["path"]) == result.parent / "samples" / f"sample-{STEPS}" / "grid.gif"
    )
    assert Path(sample["path"]).is_file()


def test_a_failed_command_writes_the_message_of_its_error_line(tmp_path, tiny_sd, stream, caplog):
    config = tuning_config(tmp_path, tiny_sd, clip=tmp_path / "gone.mp4")
    with caplog.at_level(logging.ERROR, logger="vidsynth"), pytest.raises(SystemExit) as exit_:
        run_main(lambda: run_train(["--config", str(config)]))
    assert exit_.value.code == 2
    line = _Formatter("%(message)s").format(caplog.records[-1])  # what the terminal shows
    assert read(stream) == [{"event": "error", "time": ANY, "message": line.removeprefix("error: ")}]
    assert line.startswith("error: Video file not found") and "gone.mp4" in line


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(events.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    items = [1, 2, 3]
    assert events.steps(items, "prompts") is items  # no wrapper, no cost
    events.emit("done", output="x")
    events.progress("tuning", 1, 2)
    assert list(tmp_path.iterdir()) == []


def test_only_the_first_process_of_a_launch_writes(stream, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    events.emit("done", output="x")
    monkeypatch.setenv("RANK", "0")
    events.emit("done", output="y")
    assert [event["output"] for event in read(stream)] == ["y"]


def test_a_child_command_writes_its_stages_progress_and_result_or_its_error_line(tmp_path, tiny_sd):
    """As the web app runs them: ``python -m vidsynth.<command>`` with the variable set in its environment."""
    config = yaml.safe_load(tuning_config(tmp_path, tiny_sd).read_text())
    config |= {"max_train_steps": 2, "validation_data": {"prompts": []}}
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(config))
    stream = tmp_path / "tune.jsonl"
    env = child_env() | {events.ENV: str(stream), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    tuned = subprocess.run(command("train", "--config", str(tmp_path / "short.yaml")), env=env, capture_output=True)
    assert tuned.returncode == 0, tuned.stderr.decode()[-2000:]
    written = read(stream)
    assert [(e["event"], e.get("name") or e.get("stage"), e.get("step")) for e in written] == [
        ("stage", "tuning", 0),
        ("progress", "tuning", 1),
        ("progress", "tuning", 2),
        ("stage_end", "tuning", None),
        ("done", None, None),
    ]
    assert Path(written[-1]["output"]).is_file()

    stream = tmp_path / "edit.jsonl"
    missing = tmp_path / "no-such-run"
    env[events.ENV] = str(stream)
    failed = subprocess.run(
        command("inference", "--run", str(missing), "--prompt", "a cat"), env=env, capture_output=True, text=True
    )
    assert failed.returncode == 2
    error_line = failed.stderr.strip().splitlines()[-1]
    assert error_line.startswith("error: ") and str(missing) in error_line
    assert read(stream) == [{"event": "error", "time": ANY, "message": error_line.removeprefix("error: ")}]
