"""``inference.py`` end to end: tune 2 steps with train.py, edit with two prompts, check every file it writes."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from vidsynth import inference
from vidsynth.cache_keys import inversion_cache_path
from vidsynth.cli import run_main
from vidsynth.config import load_config
from vidsynth.config.inference import InferenceConfig
from vidsynth.editing import request as edit_request
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import SAMPLE_RATE, render_scene
from vidsynth.media.span import resolve_span
from vidsynth.media.video import probe_video
from vidsynth.pipelines import ModelSource, TuneAVideoPipeline, loading
from vidsynth.pipelines.source import resolve_model_source

REPO = Path(__file__).resolve().parents[1]
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
PROMPTS = ["a red ball over the sea", "a blue ball, cartoon style"]
SIZE, FRAMES, START, STRIDE, SOURCE_FPS = 32, 4, 1, 2, 8.0
SIDECAR_KEYS = {
    "video",
    "prompt",
    "negative_prompt",
    "method",
    "seed",
    "num_inference_steps",
    "guidance_scale",
    "inversion_steps",
    "strength",
    "model",
    "fps",
    "num_frames",
    "width",
    "height",
    "window",
    "control",
    "lora",
    "region",
    "grid_gif",
    "source",
}


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env)


def _streams(path: Path) -> dict[str, str]:
    """The codec line of each stream kind from ``ffmpeg -i`` (imageio-ffmpeg has no ffprobe)."""
    info = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return dict(re.findall(r"Stream #\S+: (Video|Audio): (.*)", info))


def _audio_seconds(path: Path) -> float:
    """Length of the decoded audio stream (mono samples at the scene's rate)."""
    command = [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE)]
    raw = subprocess.run([*command, "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return len(raw) / 2 / SAMPLE_RATE


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames at 8 fps with a 440 Hz tone: frames 1, 3, 5, 7 are edited (4 fps, 0.125 s to 1.125 s)."""
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", 12, 64, 64, SOURCE_FPS, audio_channels=1)


@pytest.fixture(scope="module")
def tuned_run(tiny_sd, clip, tmp_path_factory) -> Path:
    """A 2-step tuning run of train.py on the clip (no validation, no checkpoint)."""
    root = tmp_path_factory.mktemp("tune")
    config = root / "clip.yaml"
    config.write_text(
        f"pretrained_model_path: {tiny_sd}\noutput_dir: {root / 'run'}\n"
        f"train_data:\n  video_path: {clip}\n  prompt: a ball is flying\n  n_sample_frames: {FRAMES}\n"
        f"  width: {SIZE}\n  height: {SIZE}\n  sample_start_idx: {START}\n  sample_frame_rate: {STRIDE}\n"
        "validation_data:\n  prompts: []\nmax_train_steps: 2\ngradient_checkpointing: false\n"
    )
    result = _python("train.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "run"


@pytest.fixture(scope="module")
def edited(tuned_run, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("edits") / "out"
    args = ["--run", str(tuned_run), "--prompt", PROMPTS[0], "--prompt", PROMPTS[1]]
    result = _python("inference.py", *args, "--steps", "2", "--inversion-steps", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if a pipeline gets built: bad inputs must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "_build", refuse)


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main(argv))
    return exit_info.value.code


def test_two_prompts_give_two_mp4s_with_sound_sidecars_and_one_gif(edited, clip):
    out, result = edited
    names = ["a-red-ball-over-the-sea", "a-blue-ball-cartoon-style"]
    expected = sorted([*(f"{n}.mp4" for n in names), *(f"{n}.json" for n in names), "grid.gif", "config.yaml"])
    assert sorted(os.listdir(out)) == expected
    assert str(out) in result.stdout.strip().splitlines()[-1]  # the one-line summary says where
    assert not [p for p in out.parent.iterdir() if p.name != "out"]  # no temporary folder left

    fps = SOURCE_FPS / STRIDE
    for name, prompt in zip(names, PROMPTS, strict=True):
        video = out / f"{name}.mp4"
        info = probe_video(video)
        assert (info.num_frames, info.fps, info.width, info.height) == (FRAMES, fps, SIZE, SIZE)
        assert "aac" in _streams(video)["Audio"]
        assert abs(_audio_seconds(video) - FRAMES / fps) <= 1 / fps  # within one frame of the video

        sidecar = json.loads((out / f"{name}.json").read_text())
        assert set(sidecar) == SIDECAR_KEYS
        assert (sidecar["video"], sidecar["prompt"], sidecar["method"]) == (f"{name}.mp4", prompt, "tuneavideo")
        assert (sidecar["seed"], sidecar["num_inference_steps"], sidecar["guidance_scale"]) == (33, 2, 12.5)
        assert (sidecar["inversion_steps"], sidecar["strength"]) == (2, None)
        assert sidecar["window"] is None and sidecar["grid_gif"] == {"every_nth_frame": 1, "fps": fps}  # short clip
        assert sidecar["control"] is None and sidecar["lora"] is None  # no structure guidance, no LoRA
        assert (sidecar["fps"], sidecar["num_frames"], sidecar["width"], sidecar["height"]) == (fps, FRAMES, SIZE, SIZE)
        assert "tuned_unet.safetensors" in sidecar["model"]
        assert sidecar["source"] == {
            "path": str(clip.absolute()),
            "fps": SOURCE_FPS,
            "frame_indices": {"start": 1, "stop": 9, "stride": 2},
            "start": START / SOURCE_FPS,
            "duration": FRAMES * STRIDE / SOURCE_FPS,
        }

    with Image.open(out / "grid.gif") as gif:
        assert gif.info["loop"] == 0
        assert gif.width == 3 * SIZE  # source + two prompts side by side
        assert gif.height > SIZE  # captions above the frames
        assert 1 <= gif.n_frames <= FRAMES

    saved = load_config(InferenceConfig, [out / "config.yaml"])
    assert saved.prompts == PROMPTS
    assert (saved.num_frames, saved.width, saved.start_frame, saved.stride) == (FRAMES, SIZE, START, STRIDE)
    assert saved.video == str(clip.absolute())  # the resolved request, not the flags


def test_a_second_run_with_new_prompts_skips_the_inversion(edited, tuned_run, tmp_path, monkeypatch):
    assert len(list((tuned_run / ".cache").glob("inversion-*.pt"))) == 1

    def no_inversion(*args, **kwargs):
        raise AssertionError("the inversion ran again")

    monkeypatch.setattr(TuneAVideoPipeline, "invert", no_inversion)
    out = tmp_path / "again"
    args = ["--run", str(tuned_run), "--prompt", "a green ball", "--steps", "1", "--inversion-steps", "2"]
    inference.main([*args, "--format", "gif", "--out", str(out)])
    assert sorted(os.listdir(out)) == ["config.yaml", "grid.gif"]


def test_a_clip_without_audio_edits_zero_shot(tiny_sd, tmp_path):
    silent = render_scene(tmp_path / "silent.mp4", 6, 64, 64, SOURCE_FPS, audio_channels=0)
    out = tmp_path / "out"
    args = ["--base", str(tiny_sd), "--video", str(silent), "--prompt", "a ball", "--frames", "3", "--steps", "1"]
    inference.main([*args, "--no-inversion", "--out", str(out), f"width={SIZE}", f"height={SIZE}"])
    assert sorted(os.listdir(out)) == ["a-ball.json", "a-ball.mp4", "config.yaml", "grid.gif"]
    assert set(_streams(out / "a-ball.mp4")) == {"Video"}
    info = probe_video(out / "a-ball.mp4")
    assert (info.num_frames, info.fps) == (3, SOURCE_FPS / 2)  # the default stride is the tuning default, 2
    assert json.loads((out / "a-ball.json").read_text())["model"] == str(tiny_sd)


def test_a_missing_run_folder_exits_with_a_clear_error(tmp_path, caplog, no_model_loads):
    out = tmp_path / "out"
    assert _exit_code(["--run", str(tmp_path / "no-such-run"), "--prompt", "a ball", "--out", str(out)]) == 2
    assert "no-such-run does not exist" in caplog.text and "train.py" in caplog.text
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no prompt given"),
        (["--prompt", "a ball", "--frames", "7"], "makes 6 frames, but 7 were asked. Fix: lower the frame count"),
        (["--prompt", "a ball", "--guidance", "-1"], "'guidance_scale' must not be negative"),
        (["--prompt", "a ball", "--stride", "0"], "'stride' must be positive"),
        (["--prompt", "a ball", "--format", "mp4,avi"], "must be one of mp4, gif"),
    ],
)
def test_bad_inputs_exit_2_before_any_model_loads_and_write_nothing(
    tuned_run, tmp_path, caplog, no_model_loads, extra, message
):
    before = sorted(tuned_run.rglob("*"))
    out = tmp_path / "out"
    assert _exit_code(["--run", str(tuned_run), "--out", str(out), *extra]) == 2
    assert message in caplog.text
    assert not out.exists() and sorted(tuned_run.rglob("*")) == before


def test_config_layers_profile_then_file_then_entries_then_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # profiles are configs/NAME.yaml in the folder the command runs in
    (tmp_path / "configs").mkdir()
    small = "device: cpu\ndtype: bf16\nsteps: 10\nframes: 8\nvae_slicing: false\n"
    (tmp_path / "configs" / "small.yaml").write_text(small)
    edit = tmp_path / "mine" / "edit.yaml"
    edit.parent.mkdir()
    edit.write_text("steps: 20\nseed: 7\nprompts: [from the file]\n")
    args = inference.parse_args(["--profile", "small", "--config", str(edit), "seed=8", "--frames", "4"])
    config = inference.resolve_config(args)
    assert (config.device, config.dtype, config.vae_slicing) == ("cpu", "bf16", False)  # the profile
    assert (config.num_inference_steps, config.prompts) == (20, ["from the file"])  # the file over the profile
    assert (config.seed, config.num_frames) == (8, 4)  # entries over the file, flags over everything
    with pytest.raises(VidSynthError, match="no profile 'jetson'.*Known profiles: \\['small'\\]"):
        inference.resolve_config(inference.parse_args(["--profile", "jetson", "--prompt", "x"]))


def test_width_and_height_flags_set_the_frame_size_over_the_entries():
    args = inference.parse_args(["--prompt", "x", "--width", "64", "--height", "48", "width=32"])
    config = inference.resolve_config(args)
    assert (config.width, config.height) == (64, 48)
    assert inference.resolve_config(inference.parse_args(["--prompt", "x", "width=32"])).width == 32


def test_inverted_latents_are_keyed_by_what_they_depend_on(tuned_run):
    config = InferenceConfig(run=str(tuned_run), prompts=["x"])
    request = edit_request.resolve_request(dataclasses.replace(config, device="cpu"))
    source, span, cpu = request.model, request.clip, request.device

    def key(config=config, span=span):
        return inversion_cache_path(
            config.cache_dir, config.run, source.files, span, config.inversion_steps, config.dtype, cpu.type
        )

    assert request.inversion_cache == key() == request.inversion_cache
    assert key().parent == (tuned_run / ".cache").absolute() and key().name.startswith("inversion-")
    changed = [
        key(config=InferenceConfig(run=str(tuned_run), inversion_steps=3)),
        key(span=dataclasses.replace(span, num_frames=3)),
        key(span=dataclasses.replace(span, width=64)),
        key(span=dataclasses.replace(span, start_frame=0)),
        key(span=dataclasses.replace(span, stride=1)),
        key(config=InferenceConfig(run=str(tuned_run), dtype="bf16")),
    ]
    assert len({key(), *changed}) == 7
    assert key(config=InferenceConfig(run=str(tuned_run), num_inference_steps=7)) == key()


def test_an_original_tune_a_video_output_folder_names_its_clip(tmp_path, clip):
    """Its output_dir is the pipeline folder itself, with the training config.yaml next to it."""
    folder = tmp_path / "man-skiing"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet3DConditionModel"}))
    (folder / "config.yaml").write_text(
        f"train_data:\n  video_path: {clip}\n  n_sample_frames: {FRAMES}\n  width: {SIZE}\n  height: {SIZE}\n"
        f"  sample_start_idx: {START}\n  sample_frame_rate: {STRIDE}\n"
    )
    config = InferenceConfig(run=str(folder), prompts=["x"])
    model = resolve_model_source(config.run, config.pipeline, config.base)
    assert model.source == ModelSource("tuneavideo", str(folder))
    span = resolve_span(config, model.tuned_clip, default_frames=8, default_stride=1)
    assert (span.path, span.num_frames, span.width, span.height) == (str(clip), FRAMES, SIZE, SIZE)
    assert (span.start_frame, span.stride) == (START, STRIDE)


def test_without_a_run_the_size_follows_the_clip_s_aspect_ratio_and_is_logged(tiny_sd, tmp_path, caplog, monkeypatch):
    wide = render_scene(tmp_path / "wide.mp4", 6, 80, 48, SOURCE_FPS, audio_channels=0)
    config = InferenceConfig(base=str(tiny_sd), video=str(wide), prompts=["a ball"], device="cpu", num_frames=3)
    request = edit_request.resolve_request(config)
    assert (request.clip.width, request.clip.height) == (512, 304)  # 512 x 48/80 = 307.2 -> nearest multiple of 8
    assert (request.config.width, request.config.height, request.config.stride) == (512, 304, 2)
    monkeypatch.setattr(loading, "_build", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    argv = ["--base", str(tiny_sd), "--video", str(wide), "--prompt", "a ball", "--frames", "3", "--steps", "5"]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: inference.main([*argv, "--out", str(tmp_path / "out")]))
    assert exit_info.value.code == 130  # Ctrl-C while loading: one line, nothing written
    assert "Editing 3 frames of wide.mp4 (0.00-0.75 s from frame 0, stride 2: 4 fps) at 512x304" in caplog.text
    assert "50 inversion + 5 sampling steps" in caplog.text and "interrupted" in caplog.text
    assert not (tmp_path / "out").exists()


def test_commands_print_only_what_a_user_can_act_on(edited):
    _, result = edited
    noise = ("torchvision", "kernels-community", "Traceback", "FutureWarning", "DeprecationWarning", "accelerate")
    assert not [line for line in result.stderr.splitlines() if any(word in line for word in noise)], result.stderr


def test_help_is_instant_it_imports_no_model_library():
    code = "import sys, inference\ntry:\n    inference.main(['--help'])\nexcept SystemExit:\n    pass\n"
    result = _python("-c", code + "print(sorted({'torch', 'diffusers'} & set(sys.modules)))")
    assert result.returncode == 0 and result.stdout.strip().endswith("[]"), result.stdout + result.stderr


@pytest.mark.parametrize(
    ("flags", "message"), [(["--frames", "0"], "'num_frames' must be a positive"), (["--start", "-1"], "0 or more")]
)
def test_a_bad_value_fails_before_any_model_library_is_imported(flags, message):
    code = "import sys\nfrom vidsynth import inference\nfrom vidsynth.errors import VidSynthError\n"
    code += f"try:\n    inference.main(['--base', 'x', '--prompt', 'a', *{flags!r}])\n"
    code += "except VidSynthError as err:\n    print(err)\n"
    result = _python("-c", code + "print(sorted({'torch', 'diffusers'} & set(sys.modules)))")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and message in lines[0] and lines[-1] == "[]", result.stdout + result.stderr


def test_an_unreachable_hub_id_says_so_with_the_fix(tmp_path, clip):
    config = InferenceConfig(base="nobody/no-such-model", video=str(clip), prompts=["x"], device="cpu")
    request = edit_request.resolve_request(dataclasses.replace(config, out=str(tmp_path / "out")))
    with pytest.raises(
        VidSynthError, match="cannot reach the Hugging Face hub for the model nobody/no-such-model .*HF_HUB_OFF"
    ):
        loading.load_pipeline(request.model)


def test_temporaries_of_killed_edits_are_removed_by_the_next_edit(tiny_sd, clip, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.{int(dead.stdout)}-0123abcd.partial"
    (stale / "tuneavideo").mkdir(parents=True)
    args = ["--base", str(tiny_sd), "--video", str(clip), "--prompt", "a ball", "--frames", "2", "--steps", "1"]
    inference.main(
        [*args, "--no-inversion", "--format", "gif", "--out", str(tmp_path / "new"), "width=32", "height=32"]
    )
    assert sorted(os.listdir(tmp_path)) == ["new"]
