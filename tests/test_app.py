"""The web app end to end, through Gradio's own client against an app started here (127.0.0.1, a free port).

On the tiny offline model: upload a clip with sound, tune 2 steps, edit 2 prompts, download an MP4
and find its sound; the queue runs jobs one after another and cancels them (no output left) and
follows their progress from the events the commands write; two tabs and a restarted app see the same
jobs (kept in the outputs folder) and runs; bad input gets the command line's message in the page's words.
"""

import dataclasses
import json
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from vidsynth import inference
from vidsynth.app.edit import EditForm, edit_config, inference_args, inference_config
from vidsynth.app.jobs import CANCELLED, DONE, FAILED, RUNNING, JobQueue
from vidsynth.app.progress import Progress
from vidsynth.app.runs import validation_samples
from vidsynth.app.server import serve
from vidsynth.app.service import Studio
from vidsynth.app.tune import TuneTask, tuning_defaults
from vidsynth.app.wording import EDIT_FIELDS, TUNE_FIELDS, in_page_terms
from vidsynth.config import TrainDataConfig
from vidsynth.editing.request import check_prompts
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.video import check_clip_request, probe_video
from vidsynth.run_folder import RESULT_FILE
from vidsynth.training.preflight import check_span

ROOT = Path(__file__).resolve().parents[1]

# Gradio's own queue metrics trip pandas 3's deprecation warnings on every event; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

SIZE, FRAMES, PROMPTS = 32, 4, ["a red ball", "a blue ball"]
ENDED = (DONE, FAILED, CANCELLED)
WAIT_S = 180  # a guard against a hang, not a speed requirement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(outputs: Path, checkpoints: Path) -> tuple:
    studio = Studio(outputs, checkpoints=checkpoints)
    page, url = serve(studio, "127.0.0.1", free_port())
    return studio, page, url


def connect(url: str, downloads: Path) -> Client:
    return Client(url, download_files=str(downloads), verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    (root / "checkpoints").mkdir()  # no SD-1.x model: the tiny offline one
    studio, page, url = start_app(root / "outputs", root / "checkpoints")
    yield studio, url
    page.close()
    studio.close()


@pytest.fixture(scope="module")
def client(app, tmp_path_factory) -> Client:
    return connect(app[1], tmp_path_factory.mktemp("downloads"))


@pytest.fixture(scope="module")
def uploaded(client, tmp_path_factory) -> tuple:
    """8 frames of 64x64 at 8 fps with a mono tone, uploaded: what the page shows."""
    clip = render_scene(tmp_path_factory.mktemp("clip") / "flight.mp4", 8, 64, 64, 8.0, audio_channels=1)
    return client.predict(handle_file(str(clip)), api_name="/upload_clip")


def jobs(client: Client) -> dict[int, dict]:
    return {job["id"]: job for job in client.predict(api_name="/jobs")["jobs"]}


def wait_for(client: Client, job_id: int, ready=lambda job: job["state"] in ENDED) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = jobs(client)[job_id]
        if ready(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not get there: {job}")


def wait_for_event(client: Client, job_id: int, event: str) -> dict:
    """The queue as listed once ``event`` (submitted, started, done, ...) of the job is among its events."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        listed = client.predict(api_name="/jobs")
        if {"job": job_id, "event": event} in [{"job": e["job"], "event": e["event"]} for e in listed["events"]]:
            return listed
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never got the event {event!r}: {listed['events']}")


def queued_id(status: str) -> int:
    match = re.match(r"Job (\d+) queued", status)
    assert match, status
    return int(match[1])


def tune(client: Client, studio: Studio, clip: str, name: str, **form) -> str:
    """The Tune button: a 2-step run of 4 frames of 32x32 from the clip's start, unless ``form`` says otherwise."""
    values = {"clip": clip, "prompt": "a ball is flying", "run_name": name, "steps": 2, "learning_rate": 3e-5}
    values |= {"base": str(studio.models.bases[0]), "start": 0, "end": None, "stride": 1, "frames": FRAMES}
    values |= {"width": SIZE, "height": SIZE, "sampling": "fixed", "validation_prompts": "", "validation_steps": 100}
    return client.predict(**(values | {"validation_ddim_steps": 2} | form), api_name="/tune")


def edit(client: Client, prompts: str, **form) -> str:
    """The Edit button: run-a, 2 steps, no structure guidance, unless ``form`` says otherwise."""
    values = {"run": "run-a", "prompts": prompts, "steps": 2, "guidance": 7.5, "seed": 1, "inversion": True}
    values |= {"method": "tuneavideo", "compare": False, "strength": 0.5, "controls": [], "control_video": None}
    return client.predict(**(values | {"controlnets": [], "control_scales": ""} | form), api_name="/edit")


@pytest.fixture(scope="module")
def queued(app, client, uploaded) -> dict:
    """Three tuning jobs submitted at once: A (2 steps, a validation edit at the end), B (endless: cancelled
    once it tunes), C (cancelled while it waits). What was seen on the way."""
    studio, clip = app[0], uploaded[0]["value"]
    a = queued_id(tune(client, studio, clip, "run-a", validation_prompts=PROMPTS[0], validation_steps=2))
    b = queued_id(tune(client, studio, clip, "run-b", steps=10_000))
    c = queued_id(tune(client, studio, clip, "run-c"))
    listed = wait_for_event(client, a, "started")  # the worker took A; B and C wait behind it
    seen = {"positions": {job["id"]: job["position"] for job in listed["jobs"]}}
    client.predict(c, api_name="/cancel")
    seen["a"] = wait_for(client, a)
    running = wait_for(client, b, lambda job: job["state"] == "running" and job["loss"] is not None)
    seen["b_running"], seen["b_folder_while_running"] = running, (studio.outputs / "run-b").is_dir()
    client.predict(b, api_name="/cancel")
    seen["b"] = wait_for(client, b)
    seen["ids"], seen["jobs"] = (a, b, c), jobs(client)
    seen["events"] = client.predict(api_name="/jobs")["events"]
    return seen


@pytest.fixture(scope="module")
def edited(app, client, queued) -> tuple[str, dict]:
    """run-a edited with two prompts, 2 steps: the edit's name and its job."""
    status = edit(client, "\n".join(PROMPTS))
    job = wait_for(client, queued_id(status))
    assert job["state"] == DONE, job["message"]
    return Path(job["output"]).name, job


def test_the_uploaded_clip_is_kept_and_described(app, uploaded):
    studio = app[0]
    dropdown, preview, facts, start, end, stride, frames, width, height, span = uploaded
    assert dropdown["value"] in studio.clip_names() and Path(preview).name == dropdown["value"]
    assert "64×64, 8 fps, 8 frames, 1.00 s, with sound" in facts
    assert (start, end, stride, frames) == (0, None, 2, 4)  # the tuning defaults' stride, cut to the clip
    assert "frames 0 to 6 at stride 2" in span


def test_queued_jobs_run_one_after_another_and_cancelled_ones_leave_nothing(app, queued):
    studio = app[0]
    a, b, c = queued["ids"]
    assert queued["positions"] == {a: None, b: 1, c: 2}  # A runs, B and C wait in order
    order = [(event["job"], event["event"]) for event in queued["events"]]
    assert order.index((a, "done")) < order.index((b, "started"))  # B started once A had ended
    assert (c, "started") not in order and (c, "cancelled") in order
    assert queued["a"]["state"] == DONE and (studio.outputs / "run-a" / RESULT_FILE).is_file()
    # B was tuning (live step and loss) in its run folder when it was cancelled; the folder is gone
    assert re.fullmatch(r"Tuning step \d+/10000 · loss \d+\.\d{4}.*", queued["b_running"]["progress"])
    assert queued["b_folder_while_running"]
    assert queued["jobs"][b]["state"] == CANCELLED and queued["jobs"][c]["state"] == CANCELLED
    assert not (studio.outputs / "run-b").exists() and not (studio.outputs / "run-c").exists()


def test_upload_tune_edit_and_download_an_mp4_with_sound(app, client, uploaded, edited):
    studio = app[0]
    name, job = edited
    run = studio.outputs / "run-a"
    assert [caption for _, caption in validation_samples(run)] == ["step 2"]  # the validation edit while tuning
    assert Path(job["output"]) == run / "edits" / name  # where inference.py puts an edit by default
    assert client.predict(api_name="/runs") == {"run-a": [name]}

    source, *slots, grid, note, metrics, files = client.predict("run-a", name, api_name="/show_edit")
    assert source["visible"] and Path(source["value"]).name == uploaded[0]["value"]  # side by side with the edits
    shown = [slot for slot in slots if slot["visible"]]
    assert [slot["label"] for slot in shown] == PROMPTS
    assert grid["visible"] and Path(grid["value"]).name == "grid.gif"
    assert "tiny CLIP with **random weights**" in note  # the stand-in CLIP is named on the page
    assert [(row[1], row[2], row[3]) for row in metrics["data"]] == [("tuneavideo", p, FRAMES) for p in sorted(PROMPTS)]

    downloaded = {Path(path).name: Path(path) for path in files}
    assert {"a-red-ball.mp4", "a-blue-ball.mp4", "grid.gif", "results.json"} <= set(downloaded)
    video = probe_video(downloaded["a-red-ball.mp4"])
    assert video.has_audio and (video.num_frames, video.width, video.height) == (FRAMES, SIZE, SIZE)
    sidecar = json.loads(downloaded["a-red-ball.json"].read_text())
    assert (sidecar["prompt"], sidecar["num_inference_steps"], sidecar["inversion_steps"]) == (PROMPTS[0], 2, 2)


@contextmanager
def command_line_app(outputs: Path):
    """``python -m vidsynth.app --outputs OUTPUTS`` on a free port: its URL while it runs; stopped with Ctrl-C."""
    port = free_port()
    command = [sys.executable, "-m", "vidsynth.app", "--port", str(port), "--outputs", str(outputs)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()  # the first line it prints
        assert line == f"VidSynth web app: http://127.0.0.1:{port}/", line or process.stderr.read()
        yield line.split(": ", 1)[1]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0


def test_animate_an_uploaded_image_on_the_tiny_svd_and_download_the_mp4_and_gif(app, client, tmp_path):
    """The Animate button on an uploaded still (a transparent PNG): the job runs animate, then evaluate; the
    results are served (the client downloads them through the app)."""
    studio = app[0]
    still = tmp_path / "product.png"
    Image.new("RGBA", (48, 32), (200, 30, 30, 128)).save(still)
    values = {"image": handle_file(str(still)), "video": None, "frame": 0, "model": "tiny", "frames": 4}
    values |= {"seconds": None, "fps": 6, "motion_bucket_id": 100, "noise_aug_strength": 0.05, "steps": 1, "seed": 3}
    job = wait_for(client, queued_id(client.predict(**values, decode_chunk_size=2, api_name="/animate")))
    assert job["kind"] == "animate" and job["state"] == DONE, job["message"]
    output = Path(job["output"])
    assert output.parent == studio.outputs / "animations"

    video, grid, note, metrics, files = client.predict(output.name, api_name="/show_animation")
    assert video["visible"] and grid["visible"] and Path(grid["value"]).name == "grid.gif"
    assert re.search(r"4 frames of \d+×\d+ at 6 fps, 1 steps, seed 3, motion bucket id 100", note), note
    assert [row[1:3] for row in metrics["data"]] == [["animation", 4]] and metrics["data"][0][5] is not None

    downloaded = {Path(path).name: Path(path) for path in files}  # served: the client fetched them from the app
    [mp4] = [name for name in downloaded if name.endswith(".mp4")]
    assert {"grid.gif", "results.json", Path(mp4).with_suffix(".json").name} <= set(downloaded)
    assert probe_video(downloaded[mp4]).num_frames == 4 and probe_video(downloaded[mp4]).fps == 6
    sidecar = json.loads(downloaded[Path(mp4).with_suffix(".json").name].read_text())
    assert Path(sidecar["image"]["path"]).parent == studio.stills  # the upload, kept by the app as a PNG
    assert (sidecar["noise_aug_strength"], sidecar["decode_chunk_size"], sidecar["num_frames"]) == (0.05, 2, 4)


def test_two_tabs_and_the_app_restarted_from_the_command_line_see_the_same_jobs_and_runs(app, client, edited, tmp_path):
    studio, url = app
    other_tab = connect(url, tmp_path / "tab")
    assert other_tab.predict(api_name="/jobs")["jobs"] == client.predict(api_name="/jobs")["jobs"]

    before = client.predict("run-a", edited[0], api_name="/show_edit")
    with command_line_app(studio.outputs) as new_url:
        after = connect(new_url, tmp_path / "after")
        assert after.predict(api_name="/runs") == {"run-a": [edited[0]]}
        kept = [(job["id"], job["title"], job["state"]) for job in after.predict(api_name="/jobs")["jobs"]]
        assert kept == [(job["id"], job["title"], job["state"]) for job in client.predict(api_name="/jobs")["jobs"]]
        *_, metrics, files = after.predict("run-a", edited[0], api_name="/show_edit")
    assert metrics == before[-2] and sorted(map(_name, files)) == sorted(map(_name, before[-1]))


def _name(path: str) -> str:
    return Path(path).name


def _message(check, fields: dict, *args, clip: Path | None = None) -> str:
    """The command line's message of ``check(*args)``, in the page's words: no config key or flag of ``fields``,
    the ``clip`` by its name."""
    with pytest.raises(VidSynthError) as err:
        check(*args)
    message = in_page_terms(str(err.value), fields, uploads=(clip,))
    assert message != str(err.value), message
    assert not any(name in message for names in fields.values() for name in names if "_" in name or "--" in name)
    return f"⚠️ {message}"


def test_bad_input_gets_the_command_lines_message_in_the_pages_words(app, client, uploaded, queued, tmp_path):
    studio, clip = app[0], uploaded[0]["value"]
    info = probe_video(studio.clips / clip)

    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    clips = studio.clip_names()
    _, preview, facts, *_ = client.predict(handle_file(str(not_video)), api_name="/upload_clip")
    assert preview is None and facts.startswith("⚠️ Cannot read notes.mp4 as a video (corrupt, truncated or not")
    assert "ffmpeg -i notes.mp4" in facts and studio.clip_names() == clips  # the file was not kept
    assert "/" not in facts  # the upload by its name: no temporary folder

    beyond_end = TrainDataConfig(str(info.path), "x", FRAMES, SIZE, SIZE, 0, 1, sample_end_idx=20)
    beyond = client.predict(clip, 0, 20, 1, FRAMES, SIZE, SIZE, "fixed", api_name="/check_span")
    assert (
        beyond == _message(check_span, TUNE_FIELDS, info, beyond_end, clip=info.path)
        and 'Set "end frame" to 8 or less' in beyond
    )
    late = client.predict(clip, 9, None, 1, FRAMES, SIZE, SIZE, "fixed", api_name="/check_span")
    assert late == _message(check_clip_request, TUNE_FIELDS, info, FRAMES, SIZE, SIZE, 9, 1, clip=info.path)
    assert late.endswith('Fix: start earlier ("start frame" <= 4).')
    assert client.predict(clip, 0, None, 1, FRAMES, 60, SIZE, "fixed", api_name="/check_span").startswith(
        "⚠️ width must be a positive multiple of 8"
    )
    too_many = _message(check_clip_request, TUNE_FIELDS, info, 20, SIZE, SIZE, 0, 1, clip=info.path)
    assert tune(client, studio, clip, "run-x", frames=20) == too_many and too_many.startswith(f"⚠️ {clip} has ")

    before = client.predict(api_name="/jobs")["jobs"]
    assert "the prompt is empty" in tune(client, studio, clip, "run-x", prompt="  ")
    assert edit(client, " \n ") == _message(check_prompts, EDIT_FIELDS, [])
    scale_only = EditForm(studio.outputs / "run-a", ["a ball"], 2, 7.5, 1, True, "tuneavideo", False, 0.5)
    scale_only = dataclasses.replace(scale_only, control_scales=[0.5])  # a ControlNet scale, but no control
    assert edit(client, "a ball", control_scales="0.5") == _message(edit_config, EDIT_FIELDS, scale_only)
    assert client.predict(api_name="/jobs")["jobs"] == before  # nothing was queued
    assert not (studio.outputs / "run-x").exists()


def test_progress_shows_the_outermost_stage_and_what_runs_inside_it():
    progress = Progress()
    for event in [
        {"event": "stage", "name": "tuning", "total": 10, "step": 0},
        {"event": "progress", "stage": "tuning", "step": 3, "total": 10, "eta_s": 65.2, "loss": 0.1234},
        {"event": "stage", "name": "validation", "tuning_step": 3},
        {"event": "stage", "name": "prompts", "total": 2},
        {"event": "stage", "name": "sampling", "total": 50},
        {"event": "progress", "stage": "sampling", "step": 20, "total": 50, "eta_s": 3.0},
    ]:
        progress.update(event)
    assert (progress.step, progress.total, progress.loss, progress.eta_s) == (3, 10, 0.1234, 65.2)
    assert progress.describe() == (
        "Tuning step 3/10 · loss 0.1234 · 01:05 left · validation at step 3 · prompt 0/2 · Sampling 20/50"
    )
    progress.update({"event": "stage_end", "name": "validation"})  # and every stage inside it
    assert progress.describe() == "Tuning step 3/10 · loss 0.1234 · 01:05 left"
    progress.update({"event": "stage_end", "name": "tuning"})
    assert progress.describe() == "Tuning step 3/10 · loss 0.1234"  # what ended last, until the next stage
    assert Progress().describe() == "starting (loading the models)"


class _Scripted:
    """A job of one command: ``script`` run by this Python, with the package importable, as the queue runs one."""

    kind, title, output = "scripted", "scripted", None

    def __init__(self, script: str, *args: str):
        self.args = [sys.executable, "-c", script, *args]

    def spec(self) -> dict:
        return {"args": self.args}

    @classmethod
    def from_spec(cls, spec: dict) -> "_Scripted":
        task = cls("")
        task.args = spec["args"]
        return task

    def begin(self):
        return [("tuning", self.args)]

    def finish(self, succeeded: bool) -> None:
        pass


def _wait(job, ready) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready(job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready(job), job


def test_the_queue_follows_a_commands_events_and_ends_with_its_error_message(tmp_path):
    """A command that writes its events as train.py does, waits for the test's word, then fails."""
    go = tmp_path / "go"
    script = (
        "import pathlib, sys, time\nfrom vidsynth import events\n"
        "events.begin('tuning', 4)\nevents.progress('tuning', 2, 4, loss=0.5)\n"
        "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.05)\n"
        "events.emit('error', message='the loss is nan at step 3. Lower learning_rate')\n"
        "print('error: the loss is nan at step 3. Lower learning_rate'); sys.exit(2)\n"
    )
    queue = JobQueue(tmp_path / "queue", {_Scripted.kind: _Scripted})
    try:
        job = queue.submit(_Scripted(script, str(go)))
        _wait(job, lambda job: queue.snapshot(job)["step"] == 2)
        running = queue.snapshot(job)
        go.touch()
        _wait(job, lambda job: job.state in ENDED)
    finally:
        queue.close()
    assert running["state"] == RUNNING and (running["total"], running["loss"]) == (4, 0.5)
    assert running["progress"].startswith("Tuning step 2/4 · loss 0.5000 · ")
    assert (job.state, job.message) == (FAILED, "tuning failed: the loss is nan at step 3. Lower learning_rate")


def test_the_edit_tabs_options_reach_inference_py_as_flags_that_parse_back_to_them(tmp_path):
    form = EditForm(
        run=tmp_path / "run",
        prompts=["a ball, cartoon style", "--a prompt that looks like a flag"],
        steps=3,
        guidance=7.5,
        seed=5,
        inversion=False,
        method="img2img",
        compare=True,
        strength=0.3,
        controls=["canny", "depth"],
        control_videos=[tmp_path / "pose.mp4"],
        controlnets=["org/canny", "org/depth", "org/pose"],
        control_scales=[0.8, 0.4, 1.0],
    )
    config = inference_config(form)
    python, dash_m, module, *flags = inference_args(config, tmp_path / "out")
    assert (python, dash_m, module) == (sys.executable, "-m", "vidsynth.inference")
    assert inference.resolve_config(inference.parse_args(flags)) == dataclasses.replace(
        config, out=str(tmp_path / "out")
    )


class _CrashingTune(TuneTask):
    """Creates its run folder and a file in it, then fails, as a crashed train.py would."""

    def begin(self):
        super().begin()
        script = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.mkdir(exist_ok=True); (p / 'config.yaml')"
        script += ".write_text('x'); from vidsynth import events; events.emit('error', message='out of memory')"
        script += "; sys.exit(3)"
        return [("tuning", [sys.executable, "-c", script, str(self.output)])]


@pytest.mark.parametrize("existed", [False, True])
def test_a_crashed_tuning_job_leaves_no_run_folder_it_created(tmp_path, existed):
    run = tmp_path / "run"
    if existed:
        run.mkdir()
    cfg = tuning_defaults()
    cfg.output_dir = str(run)
    queue = JobQueue(tmp_path / "queue", {TuneTask.kind: _CrashingTune})
    try:
        job = queue.submit(_CrashingTune(cfg, tmp_path / "job.yaml"))
        deadline = time.monotonic() + WAIT_S
        while job.state not in ENDED and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        queue.close()
    assert (job.state, job.message) == (FAILED, "tuning failed: out of memory")
    assert run.exists() == existed  # a folder that was there before the job is not the job's to remove
    assert not (tmp_path / "job.yaml").exists()
