"""The web app exposed: who may reach it, what it serves, what it reads, what it keeps.

A start beyond the loopback (or ``--share``) without a login, or on a taken port, is refused with one
line before Gradio loads. Over HTTP against apps started here: with a login, nothing is served before
it; without one, only clips and results of the outputs folder are (never a config, a checkpoint, the
queue, nor a file outside by an absolute path or ``..``). ControlNets come from the app's list only;
uploads have a size limit and old unused ones are removed at start-up.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from vidsynth.animation.model import PIPELINE_CLASS as SVD_CLASS
from vidsynth.app.access import read_logins
from vidsynth.app.clips import SAMPLE_SCENE
from vidsynth.app.server import serve
from vidsynth.app.service import Studio
from vidsynth.control.spec import DEFAULT_CONTROLNETS
from vidsynth.errors import VidSynthError
from vidsynth.run_folder import RESULT_FILE

ROOT = Path(__file__).resolve().parents[1]
LOGIN = ("ann", "s3cret")
MAX_UPLOAD_MB = 1

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m vidsynth.app ARGS`` that is expected to refuse (a guard of 120 s against it serving)."""
    command = [sys.executable, "-m", "vidsynth.app", "--outputs", str(cwd / "outputs"), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args", [["--host", "0.0.0.0"], ["--host", "192.168.1.5"], ["--host", "::"], ["--share"]], ids=" ".join
)
def test_serving_beyond_the_loopback_without_a_login_is_refused_with_one_line(tmp_path, args):
    done = start(*args, "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert "without a login" in line or "has no login" in line
    assert "--auth USER:PASSWORD" in line and "--no-auth" in line
    assert not (tmp_path / "outputs").exists()  # refused before anything was made


def test_a_port_in_use_is_refused_at_once_with_one_line_naming_it_and_the_fix(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start("--port", str(port), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert f"port {port} is already in use" in line and "--port N" in line
    assert not (tmp_path / "outputs").exists()


def test_logins_come_from_the_flag_a_file_or_the_environment(tmp_path, monkeypatch):
    logins = tmp_path / "logins"
    logins.write_text("# who may use the app\nann:s3cret\nbob:pass:with:colons\n")
    monkeypatch.setenv("VIDSYNTH_AUTH", "eve:env-pass")
    assert read_logins("ann:s3cret", None) == [LOGIN]
    assert read_logins(None, str(logins)) == [LOGIN, ("bob", "pass:with:colons")]
    assert read_logins(None, None) == [("eve", "env-pass")]
    with pytest.raises(VidSynthError, match="--auth must give USER:PASSWORD"):
        read_logins("ann", None)
    done = start("--auth", "ann:", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One app, served twice on the loopback: open, and with a login. Its outputs hold a run (config,
    checkpoint, an edit, a validation sample), an animation and a still; its checkpoints a ControlNet folder
    and an image-to-video (SVD) folder."""
    root = tmp_path_factory.mktemp("exposed")
    outputs, checkpoints = root / "outputs", root / "checkpoints"
    controlnet = checkpoints / "my-pose-controlnet"
    controlnet.mkdir(parents=True)
    (controlnet / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    (checkpoints / "secret.safetensors").write_text("weights")
    (checkpoints / "my-svd").mkdir()
    (checkpoints / "my-svd" / "model_index.json").write_text(json.dumps({"_class_name": SVD_CLASS}))
    (outputs / "animations" / "t1").mkdir(parents=True)
    for name in ("still.mp4", "grid.gif", "config.yaml"):
        (outputs / "animations" / "t1" / name).write_text("result")
    (outputs / "stills").mkdir()
    for name in ("still.png", "notes.txt"):
        (outputs / "stills" / name).write_text("still")
    run = outputs / "run-a"
    for folder in ("checkpoint-2", "edits/e1", "samples/sample-2"):
        (run / folder).mkdir(parents=True)
    (run / "config.yaml").write_text(f"pretrained_model_path: {checkpoints}\n")
    (run / RESULT_FILE).write_text("{}")
    (run / "checkpoint-2" / "model.safetensors").write_text("weights")
    (run / "edits" / "e1" / "a-ball.mp4").write_text("video")
    (run / "samples" / "sample-2" / "a-ball.gif").write_text("gif")
    studio = Studio(outputs, checkpoints=checkpoints, max_upload_mb=MAX_UPLOAD_MB)
    open_page, open_url = serve(studio, "127.0.0.1", free_port())
    login_page, login_url = serve(studio, "127.0.0.1", free_port(), auth=[LOGIN])
    yield {"studio": studio, "open": open_url, "login": login_url, "root": root}
    open_page.close()
    login_page.close()
    studio.close()


def status(url: str, path: str) -> int:
    """The HTTP status of GET ``path`` sent as it is (no client tidies a ``..`` away)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def file_url(path: Path | str) -> str:
    return f"/gradio_api/file={path}"


def test_only_clips_and_results_are_served(served):
    studio, root, url = served["studio"], served["root"], served["open"]
    outputs = studio.outputs
    assert status(url, file_url(outputs / "clips" / SAMPLE_SCENE)) == 200
    assert status(url, file_url(outputs / "run-a" / "edits" / "e1" / "a-ball.mp4")) == 200
    assert status(url, file_url(outputs / "run-a" / "samples" / "sample-2" / "a-ball.gif")) == 200
    for result in ("animations/t1/still.mp4", "animations/t1/grid.gif", "stills/still.png"):
        assert status(url, file_url(outputs / result)) == 200, result
    refused = {
        "a run's config": outputs / "run-a" / "config.yaml",
        "a tuned checkpoint": outputs / "run-a" / "checkpoint-2" / "model.safetensors",
        "an animation's config": outputs / "animations" / "t1" / "config.yaml",
        "a file in stills that is not a still": outputs / "stills" / "notes.txt",
        "a checkpoint": root / "checkpoints" / "secret.safetensors",
        "the queue": outputs / ".queue" / "jobs.sqlite3",
        "a tiny model": next(Path(studio.models.bases[0]).rglob("*.json")),
        "a path through ..": f"{outputs}/clips/../run-a/config.yaml",
        "a doubled slash": f"/{outputs}/run-a/config.yaml",
        "an absolute path outside": "/etc/passwd",
    }
    assert {what: status(url, file_url(path)) for what, path in refused.items()} == dict.fromkeys(refused, 403)


def test_with_a_login_nothing_is_served_before_it(served):
    studio, url = served["studio"], served["login"]
    clip = file_url(studio.outputs / "clips" / SAMPLE_SCENE)
    assert status(url, "/config") == 401 and status(url, clip) == 401
    assert status(served["open"], "/config") == 200  # the same app, served open

    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = urllib.parse.urlencode({"username": LOGIN[0], "password": "wrong"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser.open(url + "login", form, timeout=60)
    assert refused.value.code == 400
    form = urllib.parse.urlencode(dict(zip(("username", "password"), LOGIN, strict=True))).encode()
    assert browser.open(url + "login", form, timeout=60).status == 200
    assert browser.open(url + "config", timeout=60).status == 200
    assert browser.open(url + clip.lstrip("/"), timeout=60).status == 200


def test_controlnets_come_only_from_the_apps_list(served):
    studio, root = served["studio"], served["root"]
    offered = [*DEFAULT_CONTROLNETS.values(), str(root / "checkpoints" / "my-pose-controlnet")]
    assert studio.models.controlnets == offered
    assert studio.controlnets(offered[1:]) == offered[1:]
    for typed in (str(root / "checkpoints"), "/etc", "someone/any-hub-repo", "lllyasviel/control_v11p_sd15_seg"):
        with pytest.raises(VidSynthError, match="is not one this app offers. Pick one of"):
            studio.edit("run-a", "a ball", 2, 7.5, 1, True, "tuneavideo", False, 0.5, {"controlnets": [typed]})
    assert studio.queue.jobs() == []  # nothing was queued


def test_image_to_video_models_come_only_from_the_apps_list(served):
    studio, root = served["studio"], served["root"]
    svd = str(root / "checkpoints" / "my-svd")
    assert studio.models.animators == [svd] and studio.models.animator_notice is None
    assert svd not in map(str, studio.models.bases)  # not offered for tuning: it is no SD-1.x model
    assert studio.animator(svd) == svd
    for typed in (str(root / "checkpoints"), "tiny", "stabilityai/stable-video-diffusion-img2vid-xt", "/etc"):
        with pytest.raises(VidSynthError, match="is not one this app offers. Pick one of"):
            studio.animator(typed)


def test_uploads_above_the_limit_are_refused_with_the_limit_and_the_flag(served, tmp_path):
    studio = served["studio"]
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 2**20 + 1))
    clips = studio.clip_names()
    with pytest.raises(VidSynthError) as err:
        studio.keep_upload(big)
    assert "above this app's limit of 1 MB" in str(err.value) and "--max-upload-mb" in str(err.value)
    assert studio.clip_names() == clips
    with urllib.request.urlopen(served["open"] + "config", timeout=60) as response:
        config = json.load(response)
    assert config["max_file_size"] == MAX_UPLOAD_MB * 2**20  # Gradio refuses a larger upload in the page
    labels = [component.get("props", {}).get("label") or "" for component in config["components"]]
    assert "upload a clip (at most 1 MB)" in labels


def test_old_uploads_that_nothing_uses_are_removed_at_start_up(served):
    studio, root = served["studio"], served["root"]
    clips = studio.outputs / "clips"
    month_ago = time.time() - 31 * 86400
    for name in ("old-unused.mp4", "old-used.mp4", "new.mp4"):
        shutil.copyfile(clips / SAMPLE_SCENE, clips / name)
    for name in ("old-unused.mp4", "old-used.mp4", SAMPLE_SCENE):
        os.utime(clips / name, (month_ago, month_ago))
    with (studio.outputs / "run-a" / "config.yaml").open("a") as config:
        config.write(f"train_data:\n  video_path: {clips / 'old-used.mp4'}\n")
    again = Studio(studio.outputs, checkpoints=root / "checkpoints", keep_uploads_days=30)
    again.close()
    assert sorted(path.name for path in clips.iterdir()) == sorted(["old-used.mp4", "new.mp4", SAMPLE_SCENE])
