"""One-shot tuning (train.py) on the tiny checkpoint and a rendered clip: what trains, resuming, bad inputs."""

import copy
import dataclasses
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from vidsynth import VideoUNet, train
from vidsynth.cli import run_main
from vidsynth.config import InferenceConfig, TrainConfig, load_config
from vidsynth.config.train import DEFAULT_TRAINABLE_MODULES, LR_SCHEDULERS
from vidsynth.dtypes import torch_dtype
from vidsynth.editing.validation import Validation, validation_pipeline
from vidsynth.media.scene import render_scene
from vidsynth.media.video import VideoInfo
from vidsynth.models.frozen_weights import FrozenConv2d, FrozenLinear, store_frozen_weights
from vidsynth.models.trainable import load_trained, read_trained_metadata, trainable_parameter_names
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.run_folder import CHECKPOINT_FILE, find_checkpoint, list_checkpoints
from vidsynth.training import encode, loop
from vidsynth.training import result as tuning_result
from vidsynth.training.checkpoints import save_checkpoint
from vidsynth.training.encode import ClipLatents, encode_posterior
from vidsynth.training.preflight import check_span
from vidsynth.training.schedule import ValidationSchedule
from vidsynth.training.span import TuningSpan
from vidsynth.training.step import diffusion_loss, step_generator
from vidsynth.training.unet_setup import prepare_unet

REPO = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 12  # rendered clip; tuning takes 4 of them at stride 2
FAST = {  # small and quick: 4 frames of 32x32, no validation unless a test asks
    "train_data": {"prompt": "a ball flies over the grass", "n_sample_frames": 4, "width": 32, "height": 32},
    "validation_data": {"prompts": [], "video_length": 4, "width": 32, "height": 32},
    "max_train_steps": 3,
    "checkpointing_steps": 100,
    "learning_rate": 1e-3,  # large, so that a few steps move every trained parameter visibly
}


pytestmark = pytest.mark.usefixtures("one_thread")  # bit-identical results, no fight for the cores


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=CLIP_FRAMES, width=48, height=48)


def write_config(path: Path, tiny_sd: Path, clip: Path, output_dir: Path, **changes) -> Path:
    config = {
        "pretrained_model_path": str(tiny_sd),
        "output_dir": str(output_dir),
        **{key: dict(value) if isinstance(value, dict) else value for key, value in FAST.items()},
    }
    config["train_data"]["video_path"] = str(clip)
    for key, value in changes.items():
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def run_train(argv: list[str]) -> Path:
    """``train.main`` in this process; accelerate's process-wide state is reset after each run."""
    try:
        return train.main(argv)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


class Killed(Exception):
    """Stands in for a kill: raised from inside a training step."""


def record_losses(monkeypatch, kill_at_call: int | None = None, kill_with: type[BaseException] = Killed) -> list[float]:
    """Wrap train.py's loss so a test sees every loss, and can stop the run inside a given step."""
    losses = []

    def wrapped(*args, **kwargs):
        if kill_at_call is not None and len(losses) + 1 == kill_at_call:
            raise kill_with
        loss = diffusion_loss(*args, **kwargs)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(loop, "diffusion_loss", wrapped)
    return losses


def fresh_base(tiny_sd: Path) -> dict[str, torch.Tensor]:
    return VideoUNet.from_pretrained_2d(tiny_sd).state_dict()


def test_three_steps_change_the_selected_parameters_only(tmp_path, tiny_sd, clip, monkeypatch):
    out = tmp_path / "run"
    config = write_config(
        tmp_path / "c.yaml",
        tiny_sd,
        clip,
        out,
        validation_data={"prompts": ["a red ball"], "num_inference_steps": 2, "num_inv_steps": 2},
        validation_steps=3,
    )
    losses = record_losses(monkeypatch)
    tuned, write_result = {}, tuning_result.write_result

    def keep_unet(unet, *args, **kwargs):  # the whole tuned UNet, as it is when the result is written
        tuned.update({k: v.detach().clone() for k, v in unet.state_dict().items()})
        return write_result(unet, *args, **kwargs)

    monkeypatch.setattr(tuning_result, "write_result", keep_unet)
    result = run_train(["--config", str(config)])

    assert result == out / "tuned_unet.safetensors" and result.is_file()
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses))) and min(losses) > 0
    base = fresh_base(tiny_sd)
    trained = set(trainable_parameter_names(VideoUNet.from_pretrained_2d(tiny_sd), DEFAULT_TRAINABLE_MODULES))
    assert trained and set(tuned) == set(base)
    for name, value in tuned.items():
        if name in trained:
            assert not torch.equal(value, base[name]), f"{name} did not change"
        else:
            assert torch.equal(value, base[name]), f"frozen {name} changed"
    # The result file holds exactly the tuned tensors and says where they come from.
    file_tensors = load_file(result)
    assert all(torch.equal(file_tensors[name], tuned[name]) for name in file_tensors)
    metadata = read_trained_metadata(result)
    assert metadata["base_model"] == str(tiny_sd) and metadata["prompt"] == FAST["train_data"]["prompt"]
    assert metadata["clip"]["frame_indices"] == [0, 2, 4, 6] and metadata["n_sample_frames"] == 4
    assert (metadata["clip"]["width"], metadata["clip"]["height"], metadata["clip"]["fps"]) == (32, 32, 4.0)
    # The resolved config, and the validation edits of the last step.
    saved = load_config(TrainConfig, [out / "config.yaml"])
    assert saved.max_train_steps == 3 and saved.seed == 33 and saved.learning_rate == 1e-3
    assert (out / "samples" / "sample-3" / "grid.gif").is_file()
    assert not list(out.glob(".*")), "temporary files left behind"


def tensors_in(tree) -> list[torch.Tensor]:
    """Every tensor in nested dicts (bitsandbytes nests its quantisation state one level down)."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    return [t for value in tree.values() for t in tensors_in(value)] if isinstance(tree, dict) else []


@pytest.mark.parametrize(
    ("use_8bit_adam", "window_sampling"),
    [(False, "fixed"), (True, "fixed"), (False, "random")],
    ids=["adamw", "adamw-8bit", "random-windows"],
)
def test_killed_run_resumed_ends_with_identical_weights(
    tmp_path, tiny_sd, clip, monkeypatch, use_8bit_adam, window_sampling
):
    changes = {
        "train_data": {"window_sampling": window_sampling},  # random: 4-frame windows out of the 6-frame span
        "use_8bit_adam": use_8bit_adam,
        "max_train_steps": 4,
        "checkpointing_steps": 2,
        "checkpoints_total_limit": 1,
        "gradient_accumulation_steps": 2,  # accumulation and a warm-up schedule must resume too
        "lr_scheduler": "cosine",
        "lr_warmup_steps": 1,
    }
    uninterrupted = write_config(tmp_path / "a.yaml", tiny_sd, clip, tmp_path / "a", **changes)
    interrupted = write_config(tmp_path / "b.yaml", tiny_sd, clip, tmp_path / "b", **changes)
    run_train(["--config", str(uninterrupted)])

    record_losses(monkeypatch, kill_at_call=6)  # step 3 (micro-steps 5, 6): after checkpoint-2
    with pytest.raises(Killed):
        run_train(["--config", str(interrupted)])
    assert not (tmp_path / "b" / "tuned_unet.safetensors").exists()
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["checkpoint-2"]
    at_step_2 = load_file(tmp_path / "b" / "checkpoints" / "checkpoint-2" / "trained_params.safetensors")
    optimizer_state = torch.load(tmp_path / "b" / "checkpoints" / "checkpoint-2" / "optimizer.bin", weights_only=False)
    moment_dtypes = {tensor.dtype for tensor in tensors_in(optimizer_state["state"])}
    assert (torch.uint8 in moment_dtypes) == use_8bit_adam  # 8-bit AdamW keeps its moments in one byte each

    resumed_losses = record_losses(monkeypatch)
    run_train(["--config", str(interrupted), "resume_from_checkpoint=latest"])
    assert len(resumed_losses) == 4  # steps 3 and 4, two micro-steps each: steps 1-2 were not redone

    expected = load_file(tmp_path / "a" / "tuned_unet.safetensors")
    got = load_file(tmp_path / "b" / "tuned_unet.safetensors")
    assert set(got) == set(expected)
    assert all(torch.equal(got[name], expected[name]) for name in expected)
    assert any(not torch.equal(at_step_2[name], expected[name]) for name in expected)
    assert [p.name for p in (tmp_path / "a" / "checkpoints").iterdir()] == ["checkpoint-4"]  # total limit 1
    # The span is recorded for inference: its end resolved in config.yaml; the clip tuned on in the metadata.
    assert load_config(TrainConfig, [tmp_path / "b" / "config.yaml"]).train_data.sample_end_idx == CLIP_FRAMES
    metadata = read_trained_metadata(tmp_path / "b" / "tuned_unet.safetensors")
    span = list(range(0, CLIP_FRAMES, 2)) if window_sampling == "random" else [0, 2, 4, 6]
    assert metadata["clip"]["frame_indices"] == span and metadata["window_sampling"] == window_sampling


def test_random_windows_encode_the_span_once_and_each_step_tunes_on_the_window_it_drew(
    tmp_path, tiny_sd, clip, monkeypatch
):
    changes = {"train_data": {"sample_frame_rate": 1, "window_sampling": "random"}, "max_train_steps": 4}
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, tmp_path / "out", **changes)
    encoded, tuned_on = [], []

    def keep_encoded(*args):
        encoded.append(encode_posterior(*args))
        return encoded[-1]

    def keep_window(unet, scheduler, latents, *args, **kwargs):
        tuned_on.append(latents)
        return diffusion_loss(unet, scheduler, latents, *args, **kwargs)

    monkeypatch.setattr(encode, "encode_posterior", keep_encoded)
    monkeypatch.setattr(loop, "diffusion_loss", keep_window)
    run_train(["--config", str(config)])

    (whole,) = encoded  # the VAE ran once, on every frame of the span
    assert whole.mean.shape[2] == CLIP_FRAMES
    span = TuningSpan(range(CLIP_FRAMES), window=4, sampling="random")
    starts = [span.draw(step_generator(33, step)) for step in range(4)]
    assert len(set(starts)) > 1  # the windows move from step to step
    for latents, start in zip(tuned_on, starts, strict=True):
        expected = whole.window(start, 4)
        assert torch.equal(latents.mean, expected.mean) and torch.equal(latents.std, expected.std)


def test_ctrl_c_keeps_the_last_checkpoint_and_says_how_to_resume(tmp_path, tiny_sd, clip, monkeypatch, caplog):
    out = tmp_path / "out"
    argv = ["--config", str(write_config(tmp_path / "c.yaml", tiny_sd, clip, out, checkpointing_steps=2))]  # 3 steps

    record_losses(monkeypatch, kill_at_call=2, kill_with=KeyboardInterrupt)  # in step 2: before checkpoint-2
    code, log = run_cli(argv, caplog)
    assert code == 130 and "Traceback" not in log
    assert "interrupted: 1 of 3 steps done; no checkpoint was saved yet" in log

    record_losses(monkeypatch, kill_at_call=3, kill_with=KeyboardInterrupt)  # in step 3: after checkpoint-2
    code, log = run_cli(argv, caplog)
    assert code == 130
    kept = f"checkpoint-2 kept in {out / 'checkpoints'} (resume with resume_from_checkpoint=latest)"
    assert f"interrupted: 2 of 3 steps done; {kept}" in log
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml"]  # no result, no temporaries
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-2"]

    resumed_losses = record_losses(monkeypatch)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = run_train([*argv, "resume_from_checkpoint=latest"])
    assert len(resumed_losses) == 1 and result.is_file()
    messages = [record.getMessage() for record in caplog.records]
    assert f"Resuming from {out / 'checkpoints' / 'checkpoint-2'} (step 2 of 3)" in messages
    assert not [m for m in messages if "overwrite" in m or "Removing" in m], messages
    assert all("\n" not in m for m in messages)  # one line each: no multi-line environment dump


def run_cli(argv: list[str], caplog) -> tuple[int, str]:
    """What ``python train.py ...`` does, in this process: exit code and the logged error."""
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        try:
            run_main(lambda: train.main(argv))
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)
    return exit_info.value.code, caplog.text


@pytest.mark.parametrize(
    ("case", "overrides", "message"),
    [
        ("missing", ["train_data.video_path={missing}"], "not found.*nope.mp4"),
        ("corrupt", ["train_data.video_path={corrupt}"], "Cannot read .*bad.mp4"),
        ("short", ["train_data.n_sample_frames=8"], "has 12 frames.* 6 frames.*n_sample_frames"),
        (
            "start-past-clip",
            ["train_data.sample_start_idx=12"],
            "has 12 frames; from frame 12 .* 0 frames.*start earlier",
        ),
        (
            "end-past-clip",
            ["train_data.sample_end_idx=13"],
            "sample_end_idx is 13 but .*clip.mp4 has 12 frames. Set sample_end_idx=12 or less, or null",
        ),
        (
            "end-before-start",
            ["train_data.sample_start_idx=4", "train_data.sample_end_idx=4"],
            r"sample_end_idx \(4\) is not after sample_start_idx \(4\).*between 5 and 12",
        ),
        (
            "window-over-span",
            ["train_data.sample_end_idx=6"],
            "frames 0 to 6 .* at stride 2, has 3 frames, fewer than the window of n_sample_frames=4. Fix: lower "
            "train_data.n_sample_frames to 3, or lower sample_frame_rate to 1, or raise sample_end_idx",
        ),
        ("window-sampling", ["train_data.window_sampling=randm"], "must be one of fixed, random; got 'randm'"),
        ("size-8", ["train_data.width=36"], "width must be a positive multiple of 8.*got 36. Use 32 or 40"),
        ("save-dtype", ["save_dtype=fp64"], "'save_dtype' must be one of fp32, fp16, bf16; got 'fp64'"),
        (
            "unknown-key",
            ["train_data.n_sampl_frames=4"],
            "unknown config key.*Did you mean 'train_data.n_sample_frames'",
        ),
        ("wrong-type", ["max_train_steps=many"], "'max_train_steps'.*many"),
        ("trainable", ["trainable_modules=[attn_tmp]"], "'attn_tmp' matches no module"),
        ("model", ["pretrained_model_path={missing_model}"], "pretrained_model_path .*does not exist"),
    ],
)
def test_bad_input_fails_before_loading_and_leaves_nothing(tmp_path, tiny_sd, clip, caplog, case, overrides, message):
    corrupt = tmp_path / "bad.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    paths = {"missing": tmp_path / "nope.mp4", "corrupt": corrupt, "missing_model": tmp_path / "no-model"}
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out)
    code, log = run_cli(["--config", str(config), *[o.format(**paths) for o in overrides]], caplog)
    assert code == 2
    assert re.search(message, log), log
    assert not out.exists()


def test_8bit_adam_without_bitsandbytes_fails_before_loading(tmp_path, tiny_sd, clip, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed: importing it fails
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out)
    code, log = run_cli(["--config", str(config), "use_8bit_adam=true"], caplog)
    assert code == 2
    assert "use_8bit_adam: true needs the bitsandbytes package" in log and "use_8bit_adam=false" in log
    assert not out.exists()


def test_command_line_exit_code_and_message(tmp_path, tiny_sd, clip):
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out, train_data={"video_path": str(tmp_path / "x.mp4")})
    command = [sys.executable, "train.py", "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Video file not found" in proc.stderr and "x.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_finished_result_is_not_overwritten_without_overwrite(tmp_path, tiny_sd, clip, caplog):
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out, max_train_steps=1)
    result = run_train(["--config", str(config)])
    before = result.read_bytes()
    code, log = run_cli(["--config", str(config), "seed=5"], caplog)
    assert code == 2 and "already holds a finished result" in log and "overwrite=true" in log
    assert result.read_bytes() == before
    run_train(["--config", str(config), "seed=5", "overwrite=true", "save_full_pipeline=true", "report_to=tensorboard"])
    assert result.read_bytes() != before and read_trained_metadata(result)["seed"] == 5
    # The full pipeline folder holds the base model with the tuned parameters; the loss went to TensorBoard.
    pipe = TuneAVideoPipeline.from_pretrained(out / "pipeline")
    state = pipe.unet.state_dict()
    assert all(torch.equal(state[name], value) for name, value in load_file(result).items())
    assert list((out / "logs").rglob("events.out.tfevents*"))


ORIGINAL_YAML = """\
pretrained_model_path: "{model}"
output_dir: "{output}"

train_data:
  video_path: "{clip}"
  prompt: "a man is skiing"
  n_sample_frames: 24
  width: 512
  height: 512
  sample_start_idx: 0
  sample_frame_rate: 2

validation_data:
  prompts:
    - "mickey mouse is skiing on the snow"
    - "spider man is skiing on the beach, cartoon style"
  video_length: 24
  width: 512
  height: 512
  num_inference_steps: 50
  guidance_scale: 12.5
  use_inv_latent: True
  num_inv_steps: 50

learning_rate: 3e-5
train_batch_size: 1
max_train_steps: 500
checkpointing_steps: 1000
validation_steps: 100
trainable_modules:
  - "attn1.to_q"
  - "attn2.to_q"
  - "attn_temp"

seed: 33
mixed_precision: fp16
use_8bit_adam: False
gradient_checkpointing: True
enable_xformers_memory_efficient_attention: True
"""


def test_original_tune_a_video_config_runs(tmp_path, tiny_sd, clip, caplog):
    config = tmp_path / "man-skiing.yaml"
    config.write_text(ORIGINAL_YAML.format(model=tiny_sd, output=tmp_path / "out", clip=clip))
    small = [
        "train_data.n_sample_frames=4",
        "train_data.width=32",
        "train_data.height=32",
        "max_train_steps=2",
        "validation_steps=2",  # the edits of the final weights (a run shorter than validation_steps renders none)
        "validation_data.num_inference_steps=2",
        "validation_data.num_inv_steps=2",
    ]
    with caplog.at_level(logging.WARNING):
        result = run_train(["--config", str(config), *small])
    assert result.is_file() and (tmp_path / "out" / "samples" / "sample-2" / "grid.gif").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("xformers" in w for w in warnings) == 1
    assert any("fp16" in w and "bf16" in w for w in warnings)  # no fp16 autocast on the CPU
    assert any("video_length is 24" in w for w in warnings)  # edits have the clip's 4 frames
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["mixed_precision"] == "bf16" and saved["learning_rate"] == 3e-5


@pytest.mark.parametrize(("frozen_dtype", "autocast"), [("fp32", False), ("bf16", False), ("bf16", True)])
def test_gradient_checkpointing_leaves_every_tuned_parameter_a_gradient(tiny_sd, frozen_dtype, autocast):
    unet = VideoUNet.from_pretrained_2d(tiny_sd)
    with torch.no_grad():  # a non-zero temporal output, else attn_temp's q/k/v gradients are exactly zero
        for name, param in unet.named_parameters():
            if name.endswith("attn_temp.to_out.0.weight"):
                param.normal_(std=0.1)
    params = prepare_unet(unet, DEFAULT_TRAINABLE_MODULES, frozen_dtype, gradient_checkpointing=True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in unet.modules())
    latents = ClipLatents(torch.randn(1, 4, 3, 4, 4), torch.full((1, 4, 3, 4, 4), 0.1), 0.18215)
    scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(tiny_sd, subfolder="scheduler"))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = diffusion_loss(unet, scheduler, latents, torch.randn(1, 77, 32), step_generator(0, 0))
    loss.backward()
    names = {id(p): n for n, p in unet.named_parameters()}
    assert {names[id(p)] for p in params} == set(trainable_parameter_names(unet, DEFAULT_TRAINABLE_MODULES))
    for param in params:
        assert param.dtype == torch.float32 and param.grad is not None, names[id(param)]
        assert param.grad.abs().sum() > 0, names[id(param)]
    assert all(p.grad is None for p in unet.parameters() if not p.requires_grad)
    stored = {
        p.dtype for m in unet.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d) for p in m.parameters()
    }
    assert stored == ({torch.float32, torch.bfloat16} if frozen_dtype == "bf16" else {torch.float32})
    assert unet.conv_in.weight.dtype == torch_dtype(frozen_dtype)


def test_step_draws_come_from_the_seed_and_the_step_only(tiny_sd):
    unet = VideoUNet.from_pretrained_2d(tiny_sd).eval()
    scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(tiny_sd, subfolder="scheduler"))
    mean = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    latents = ClipLatents(mean, torch.full_like(mean, 0.5), 0.18215)
    context = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(2))

    def loss(step, batch_size=1, sample_posterior=True, clip=latents):
        with torch.no_grad():
            return diffusion_loss(
                unet, scheduler, clip, context, step_generator(33, step), batch_size, sample_posterior
            )

    torch.manual_seed(123)  # the global RNG plays no part
    first = loss(5)
    torch.manual_seed(456)
    assert torch.equal(loss(5), first) and not torch.equal(loss(6), first)
    assert loss(5, batch_size=2).ndim == 0
    # latent_sampling "mean" ignores the posterior's spread; "sample" does not.
    wide = ClipLatents(mean, torch.full_like(mean, 2.0), 0.18215)
    assert torch.equal(loss(5, sample_posterior=False), loss(5, sample_posterior=False, clip=wide))
    assert not torch.equal(loss(5), loss(5, clip=wide))


def test_random_windows_cover_the_whole_span_and_come_from_the_step_generator():
    span = TuningSpan(range(3, 15, 2), window=4, sampling="random")  # 6 span frames: windows at positions 0..2
    starts = [span.draw(step_generator(33, step)) for step in range(60)]
    assert set(starts) == {0, 1, 2}  # the last window too: uniformly anywhere in the span
    assert starts == [span.draw(step_generator(33, step)) for step in range(60)]  # the same again: resumable
    assert starts != [span.draw(step_generator(33, step, process=1)) for step in range(60)]  # per process
    # fixed: always the first window, and the generator is left as it was (fixed runs draw what they always drew)
    generator = step_generator(33, 0)
    state = generator.get_state()
    assert dataclasses.replace(span, sampling="fixed").draw(generator) == 0
    assert torch.equal(generator.get_state(), state)


def test_clip_latents_encoded_frame_by_frame_equal_one_batch_encode(tiny_sd):
    """The span is encoded one frame at a time; the posterior is exactly what one batch encode gives (fixed runs
    train on what they always did), and a window is the slice of those frames."""
    pipe = validation_pipeline(str(tiny_sd), VideoUNet.from_pretrained_2d(tiny_sd), torch.device("cpu"))
    pixels = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (F, 3, H, W)
    latents = encode_posterior(pipe.vae, pixels.split(1))
    with torch.no_grad():
        posterior = pipe.vae.encode(pixels).latent_dist  # over (F, 4, h, w)
    assert torch.equal(latents.mean, posterior.mean.permute(1, 0, 2, 3).unsqueeze(0))
    assert torch.equal(latents.std, posterior.std.permute(1, 0, 2, 3).unsqueeze(0))
    window = latents.window(2, 3)
    assert torch.equal(window.mean, latents.mean[:, :, 2:5]) and torch.equal(window.std, latents.std[:, :, 2:5])


def test_frozen_bf16_layers_compute_in_float32_and_save_only_bf16_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1),
        torch.nn.GroupNorm(2, 8),
        torch.nn.Conv2d(8, 8, 3, padding=1, stride=2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 5),
    )
    for index in (0, 2, 4):
        model[index].requires_grad_(False)
    rounded = copy.deepcopy(model)  # plain float32 layers holding the bf16-rounded weights
    for index in (0, 2, 4):
        for param in rounded[index].parameters():
            param.data = param.data.bfloat16().float()
    norm_storage = model[1].weight.data_ptr()
    assert store_frozen_weights(model, torch.bfloat16) == 3
    assert model[1].weight.data_ptr() != norm_storage  # float32 ones copied off a possibly memory-mapped file
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = model(x)
    y.square().sum().backward()
    y_ref = rounded(x_ref)
    y_ref.square().sum().backward()
    assert y.dtype == torch.float32 and torch.equal(y, y_ref)
    assert torch.equal(x.grad, x_ref.grad) and torch.equal(model[1].weight.grad, rounded[1].weight.grad)
    weights = [model[i].weight for i in (0, 2, 4)]
    assert not any(t.dtype == torch.float32 and t.shape == w.shape for t in saved for w in weights)
    assert model[4].weight.dtype == torch.bfloat16 and model[1].weight.dtype == torch.float32


def float32_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same model with plain float32 layers holding the bf16-rounded weights of its bf16-stored ones."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, (FrozenLinear, FrozenConv2d)):
            module.__class__ = torch.nn.Linear if isinstance(module, FrozenLinear) else torch.nn.Conv2d
            module.float()
    return model


def test_validation_with_bf16_frozen_weights_inverts_in_float32(tiny_sd):
    unet = VideoUNet.from_pretrained_2d(tiny_sd).eval()
    prepare_unet(unet, DEFAULT_TRAINABLE_MODULES, frozen_dtype="bf16", gradient_checkpointing=False)
    pipe = validation_pipeline(str(tiny_sd), unet, torch.device("cpu"), frozen_dtype="bf16")
    reference = TuneAVideoPipeline(
        vae=float32_copy(pipe.vae),
        text_encoder=float32_copy(pipe.text_encoder),
        tokenizer=pipe.tokenizer,
        unet=float32_copy(pipe.unet),
        scheduler=pipe.scheduler,
    )
    assert pipe.unet.conv_in.weight.dtype == torch.bfloat16 and pipe.vae.encoder.conv_in.weight.dtype == torch.bfloat16
    pixels = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (F, 3, H, W)
    latents = pipe.encode_video(pixels)
    inverted = pipe.invert(latents, prompt="a ball", num_inference_steps=3)
    expected = reference.invert(reference.encode_video(pixels), prompt="a ball", num_inference_steps=3)
    assert latents.dtype == inverted.dtype == torch.float32  # not rounded to the weights' storage dtype
    torch.testing.assert_close(inverted, expected, rtol=0, atol=1e-5)


def test_accelerate_launch_runs_without_a_config_file(tmp_path, tiny_sd, clip):
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, tmp_path / "out", max_train_steps=1)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "train.py", "--config", str(config)]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}  # no accelerate config there
    proc = subprocess.run(
        [*launch, "mixed_precision=bf16", "frozen_dtype=bf16"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = tmp_path / "out" / "tuned_unet.safetensors"
    unet = VideoUNet.from_pretrained_2d(tiny_sd)
    assert load_trained(unet, result)["steps"] == 1


def tensorboard_scalars(logs: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series accelerate's TensorBoard tracker wrote under ``logs``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series = {}
    for folder in {path.parent for path in logs.rglob("events.out.tfevents*")}:
        events = EventAccumulator(str(folder))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            series[tag] = [(event.step, event.value) for event in events.Scalars(tag)]
    return series


def free_port() -> int:
    """A TCP port nothing listens on now, so that concurrent launches do not meet on accelerate's default 29500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_tune_on_their_own_random_windows(tmp_path, tiny_sd, clip):
    """Two processes on the CPU: data parallel over the clip, each process its own windows.

    ``accelerate launch --cpu`` starts one process whatever ``--num_processes`` says (several CPU processes
    need mpirun), so the processes are started as on GPUs (torchrun) and ACCELERATE_USE_CPU puts them on the CPU.
    """
    out = tmp_path / "out"
    config = write_config(
        tmp_path / "c.yaml",
        tiny_sd,
        clip,
        out,
        train_data={"sample_frame_rate": 1, "window_sampling": "random"},  # 4-frame windows out of all 12 frames
        validation_data={"prompts": ["a red ball"], "num_inference_steps": 2, "num_inv_steps": 2},
        validation_steps=3,  # after the last step
        report_to="tensorboard",
    )
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--main_process_port", str(free_port())]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    command = [*launch, "train.py", "--config", str(config)]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    metadata = read_trained_metadata(out / "tuned_unet.safetensors")
    assert metadata["steps"] == 3 and metadata["clip"]["frame_indices"] == list(range(CLIP_FRAMES))
    # Each process drew its windows from its own step generator (seed, step, process): different windows.
    span = TuningSpan(range(CLIP_FRAMES), window=4, sampling="random")
    scalars = tensorboard_scalars(out / "logs")
    drawn = {}
    for process in (0, 1):
        drawn[process] = [value for _, value in scalars[f"window_start/process_{process}"]]
        assert drawn[process] == [span.frames[span.draw(step_generator(33, step, 0, process))] for step in range(3)]
    assert drawn[0] != drawn[1]
    # Validation edited the span's first window, as a fixed run would.
    validated = load_config(InferenceConfig, [out / "samples" / "sample-3" / "config.yaml"])
    assert (validated.start_frame, validated.num_frames) == (0, 4)


def test_whole_clip_config_tunes_on_every_frame_of_car_turn_sound_in_random_windows():
    cfg = load_config(TrainConfig, [REPO / "configs" / "whole-clip.yaml"])
    car_turn_sound = VideoInfo("car-turn-sound.mp4", num_frames=80, fps=10.0, width=480, height=480, has_audio=True)
    span = check_span(car_turn_sound, cfg.train_data)
    assert (span.frames, span.window, span.sampling) == (range(80), 24, "random")
    assert cfg.validation_data.video_length == span.window  # validation edits the first window


def test_shipped_configs_document_every_key_and_match_the_original_samples():
    clip_yaml = REPO / "configs" / "clip.yaml"
    documented = yaml.safe_load(clip_yaml.read_text())
    schema = load_config(TrainConfig, [clip_yaml])
    assert set(documented) == set(vars(schema))  # every key of the schema appears in the documented config
    for section in ("train_data", "validation_data"):
        assert set(documented[section]) == set(vars(getattr(schema, section)))
    for line in clip_yaml.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "- ")):
            assert " # " in line, f"undocumented key: {line}"

    samples = {
        "car-turn": ("a jeep car is moving on the road", 2, "a sports car is moving on the road"),
        "man-surfing": ("a man is surfing", 1, "Iron Man is surfing in the desert"),
    }
    for name, (prompt, stride, last_edit) in samples.items():
        cfg = load_config(TrainConfig, [REPO / "configs" / f"{name}.yaml"])
        data = cfg.train_data
        assert (data.prompt, data.sample_frame_rate, data.n_sample_frames, data.width, data.height) == (
            prompt,
            stride,
            24,
            512,
            512,
        )
        assert data.video_path == f"../shared/media/{name}.mp4" and cfg.validation_data.prompts[-1] == last_edit
        assert (cfg.learning_rate, cfg.max_train_steps, cfg.seed, cfg.mixed_precision) == (3e-5, 500, 33, "fp16")


def test_frame_sizes_need_only_be_multiples_of_8(tmp_path, tiny_sd, monkeypatch):
    """72x40 is a multiple of neither the tiny model's 16 nor SD's 64: the UNet meets odd latent sizes (9x5 -> 5x3)."""
    clip = render_scene(tmp_path / "clip.mp4", num_frames=CLIP_FRAMES, width=64, height=64)
    out = tmp_path / "run"
    size = {"width": 72, "height": 40}
    validation = {"prompts": ["a red ball"], "num_inference_steps": 2, "num_inv_steps": 2, **size}
    config = write_config(
        tmp_path / "c.yaml",
        tiny_sd,
        clip,
        out,
        train_data=size,
        validation_data=validation,
        max_train_steps=2,
        checkpointing_steps=2,
        validation_steps=2,
        save_dtype="fp16",
    )
    losses = record_losses(monkeypatch)
    result = run_train(["--config", str(config)])
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    clip_info = read_trained_metadata(result)["clip"]
    assert (clip_info["width"], clip_info["height"]) == (72, 40)
    assert (out / "samples" / "sample-2" / "grid.gif").is_file()
    # save_dtype fp16: the result is the last checkpoint's float32 parameters rounded to fp16.
    saved = load_file(result)
    checkpoint = load_file(out / "checkpoints" / "checkpoint-2" / "trained_params.safetensors")
    assert set(saved) == set(checkpoint)
    assert {t.dtype for t in saved.values()} == {torch.float16}
    assert {t.dtype for t in checkpoint.values()} == {torch.float32}
    assert all(torch.equal(saved[name], checkpoint[name].half()) for name in saved)


def flat(tree: dict, prefix: str = "") -> dict:
    """Nested config sections as dotted keys."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def test_clip_yaml_shows_the_default_of_every_key():
    """configs/clip.yaml says its values are the defaults, apart from the clip and prompt a user must replace."""
    shown = flat(yaml.safe_load((REPO / "configs" / "clip.yaml").read_text()))
    defaults = flat(dataclasses.asdict(TrainConfig()))
    assert set(shown) == set(defaults)
    required = {"train_data.video_path", "train_data.prompt"}
    assert all(defaults[key] == "???" for key in required)
    differ = {key: (shown[key], defaults[key]) for key in set(shown) - required if shown[key] != defaults[key]}
    assert not differ, differ


def test_bitsandbytes_is_quiet_when_diffusers_imports_it():
    """diffusers imports bitsandbytes even with use_8bit_adam off, and its CPU backend may log a warning on import
    (about an optional package); by then train.py has turned its loggers down."""
    probe = textwrap.dedent(
        """
        import importlib.machinery, logging, sys

        class Probe:  # reports the bitsandbytes logger's level when the package's code runs (not on find_spec)
            def find_spec(self, name, path, target=None):
                if name != "bitsandbytes":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                run = spec.loader.exec_module

                def exec_module(module):
                    print("bitsandbytes imported at log level", logging.getLogger(name).getEffectiveLevel())
                    run(module)

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, Probe())
        from vidsynth import train
        import vidsynth.training.loop  # what train.py imports once the request is checked: diffusers among it
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"bitsandbytes imported at log level {logging.ERROR}\n"
    assert proc.stderr == ""


class SavesState:
    """Stands in for the Accelerator in save_checkpoint: ``save_state`` writes a checkpoint's files, or dies halfway."""

    def __init__(self, die: bool = False):
        self.die = die

    def save_state(self, output_dir: str) -> None:
        (Path(output_dir) / CHECKPOINT_FILE).write_bytes(b"trained")
        if self.die:
            raise Killed


def test_checkpoint_rotation_keeps_the_newest_complete_ones(tmp_path):
    folder = tmp_path / "checkpoints"
    for step in range(1, 6):
        save_checkpoint(SavesState(), folder, step * 10, total_limit=2)
    assert [p.name for p in list_checkpoints(folder)] == ["checkpoint-40", "checkpoint-50"]
    # A save killed halfway removes nothing: the old ones go only once the new one is complete (accelerate's
    # total_limit deletes first, and writes in place under the final name).
    with pytest.raises(Killed):
        save_checkpoint(SavesState(die=True), folder, 60, total_limit=2)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-40", "checkpoint-50"]  # no temporaries either
    assert find_checkpoint("latest", folder) == folder / "checkpoint-50"
    save_checkpoint(SavesState(), folder, 60, total_limit=1)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-60"]
    assert (folder / "checkpoint-60" / CHECKPOINT_FILE).read_bytes() == b"trained"


def test_resumed_run_renders_again_the_samples_after_its_checkpoint(tmp_path, tiny_sd, clip, caplog, capsys):
    """A kill after the last sample (the result not yet written) left samples after checkpoint-2; resuming redoes
    them instead of refusing to overwrite sample-3."""
    out = tmp_path / "out"
    validation = {"prompts": ["a panda"], "num_inference_steps": 1, "num_inv_steps": 1}
    changes = {"checkpointing_steps": 2, "validation_steps": 1, "validation_data": validation}  # 3 steps
    argv = ["--config", str(write_config(tmp_path / "c.yaml", tiny_sd, clip, out, **changes))]
    run_train(argv)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["sample-1", "sample-2", "sample-3"]
    (out / "tuned_unet.safetensors").unlink()  # as a kill after the last sample leaves the run
    for step in (2, 3):
        (out / "samples" / f"sample-{step}" / "left-by-the-first-run").touch()

    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = run_train([*argv, "resume_from_checkpoint=latest"])
    assert result.is_file()
    assert (out / "samples" / "sample-2" / "left-by-the-first-run").exists()  # rendered before the checkpoint: kept
    assert not (out / "samples" / "sample-3" / "left-by-the-first-run").exists()  # after it: rendered again
    assert (out / "samples" / "sample-3" / "grid.gif").is_file()
    assert not list((out / "samples").glob(".*")), "temporaries left behind"
    messages = [record.getMessage() for record in caplog.records]
    rendered = [m for m in messages if m.startswith("Validation after step")]
    assert rendered == [
        "Validation after step 3: 1 prompt, 4 frames at 32x32, 1 DDIM inversion + 1 sampling steps each, "
        f"guidance 12.5 -> {out / 'samples' / 'sample-3'}"
    ]
    assert "  Validation: after steps 1, 2, 3 (3 times); each: 1 prompt, 4 frames at 32x32, " in "\n".join(messages)
    bars = capsys.readouterr().err  # the stage's progress bars say what they are
    assert re.search(r"Validation: DDIM inversion: +\d+%", bars) and re.search(r"Validation: Sampling: +\d+%", bars)


@pytest.mark.parametrize(
    ("validation_steps", "max_train_steps", "expected"),
    [
        (1, 3, [1, 2, 3]),
        (2, 5, [2, 4, 5]),  # and after the last step, which is not a multiple
        (2, 4, [2, 4]),
        (3, 3, [3]),  # validation_steps=max_train_steps: edits of the final weights only
        (250, 4, []),  # a run shorter than validation_steps renders none
    ],
)
def test_validation_runs_at_multiples_of_validation_steps_and_at_the_end_of_a_long_enough_run(
    validation_steps, max_train_steps, expected
):
    cfg = TrainConfig(validation_steps=validation_steps, max_train_steps=max_train_steps)
    cfg.validation_data.prompts = ["a panda"]
    schedule = ValidationSchedule.of(cfg)
    assert schedule.steps() == expected
    assert [step for step in range(max_train_steps + 2) if schedule.due(step)] == expected
    cfg.validation_data.prompts = []
    assert ValidationSchedule.of(cfg).steps() == []


def test_short_run_renders_no_end_validation_and_says_so(tmp_path, tiny_sd, clip, caplog, monkeypatch):
    out = tmp_path / "out"
    validation = {"prompts": ["a panda"], "num_inference_steps": 1, "num_inv_steps": 1}
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out, validation_steps=4, validation_data=validation)
    rendered = []
    monkeypatch.setattr(Validation, "render", lambda self, unet, device, step: rendered.append(step))
    with caplog.at_level(logging.INFO):
        assert run_train(["--config", str(config)]).is_file()  # 3 steps
    assert rendered == [] and not (out / "samples").exists()
    messages = [record.getMessage() for record in caplog.records]
    why = "validation_steps 4 > max_train_steps 3 (set validation_steps=3 for edits of the final weights)"
    assert f"  Validation: none: {why}" in messages


def test_help_and_config_errors_come_before_torch_is_imported(tmp_path, tiny_sd, clip):
    """The request is checked before torch, diffusers, accelerate or transformers load (seconds of imports)."""
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, tmp_path / "out")
    bad = [
        ["train_data.n_sample_frames=0"],
        ["train_data.n_sampl_frames=4"],
        ["max_train_steps=0"],
        ["train_data.sample_end_idx=13"],
        [f"train_data.video_path={tmp_path / 'nope.mp4'}"],
        [f"pretrained_model_path={tmp_path / 'no-model'}"],
        ["resume_from_checkpoint=" + str(tmp_path)],
    ]
    probe = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from vidsynth import train
        from vidsynth.errors import VidSynthError

        help_text = io.StringIO()
        with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
            train.main(["--help"])
        errors = []
        for overrides in {bad!r}:
            try:
                train.main(["--config", {str(config)!r}, *overrides])
            except VidSynthError as err:
                errors.append(str(err))
        heavy = [name for name in ("torch", "diffusers", "accelerate", "transformers") if name in sys.modules]
        print(json.dumps({{"help": help_text.getvalue(), "errors": errors, "heavy": heavy}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert "--config" in found["help"]
    expected = [
        "num_frames must be an integer >= 1, got 0",
        "unknown config key",
        "'max_train_steps' must be at least 1",
        "sample_end_idx is 13",
        "Video file not found",
        "pretrained_model_path .* does not exist",
        "is not a checkpoint folder",
    ]
    assert len(found["errors"]) == len(expected)
    for error, message in zip(found["errors"], expected, strict=True):
        assert re.search(message, error), error
    assert found["heavy"] == []
    # The real command: exit 2 and one line, nothing created.
    command = [sys.executable, "train.py", "--config", str(config), "train_data.n_sample_frames=0"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert not (tmp_path / "out").exists()


def test_names_written_out_for_the_config_are_the_libraries_and_models():
    """What a config is checked against without importing diffusers: exactly the schedules get_scheduler takes, and
    the default trainable modules of vidsynth.models.trainable."""
    from diffusers.optimization import SchedulerType

    from vidsynth.models import trainable

    offered = {kind.value for kind in SchedulerType} - {SchedulerType.PIECEWISE_CONSTANT.value}
    assert set(LR_SCHEDULERS) == offered
    assert DEFAULT_TRAINABLE_MODULES == trainable.DEFAULT_TRAINABLE_MODULES
