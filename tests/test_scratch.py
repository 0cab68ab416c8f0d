"""Video models trained from scratch: per-frame labels, training that learns, exact resuming, the cascade, bad input."""

import json
import logging
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from vidsynth.cli import run_main
from vidsynth.errors import VidSynthError
from vidsynth.scratch import diffusion, generate, train
from vidsynth.scratch.config import StageConfig
from vidsynth.scratch.model import build_unet
from vidsynth.scratch.sample import load_run, sample_cascade
from vidsynth.scratch.shapes import make_shapes

pytestmark = pytest.mark.usefixtures("one_thread")  # bit-identical resuming, no fight for the cores

TINY = {"resolution": 16, "block_out_channels": [16, 32], "norm_num_groups": 8}


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """Two 2-second labelled shapes videos at 32x32 (labels left/right/up/down)."""
    return make_shapes(tmp_path_factory.mktemp("footage") / "shapes", num_videos=2, seconds=2, fps=8, size=32)


def write_config(path: Path, footage: Path, out: Path, labels: bool = True, **changes) -> Path:
    config = {
        "data": {"path": str(footage / "videos"), "num_frames": 4, "frame_skip": 1},
        "stages": [{"name": "base", **TINY}],
        "output_dir": str(out),
        "max_train_steps": 4,
        "train_batch_size": 2,
        "checkpointing_steps": 2,
        "validation_steps": 100,
        "validation_samples": 2,
        "validation_inference_steps": 2,
        "report_to": None,
        **changes,
    }
    if labels:
        config["data"]["labels"] = str(footage / "labels.csv")
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def run_train(argv: list[str]) -> Path:
    """``train.main`` in this process; accelerate's process-wide state is reset after each run."""
    try:
        return train.main(argv)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def exit_line(caplog, main, argv: list[str]) -> str:
    """Run a command as its CLI does; it must exit 2 with one error line, which is returned."""
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="vidsynth"), pytest.raises(SystemExit) as exited:
        run_main(lambda: main(argv))
    assert exited.value.code == 2
    (line,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    return line


def test_one_frames_label_changes_that_frames_prediction_and_an_unconditional_model_refuses_labels():
    torch.manual_seed(0)
    clips, timesteps = torch.randn(1, 3, 4, 16, 16), torch.tensor([500])
    for unet, labels in [
        (build_unet(StageConfig(name="base", **TINY), num_classes=4), torch.tensor([[0, 1, 2, 3]])),
        (build_unet(StageConfig(name="base", **TINY), label_dim=6), torch.randn(1, 4, 6)),  # e.g. keypoints
    ]:
        changed = labels.clone()
        changed[0, 2] = 0 if labels.dtype == torch.long else torch.randn(6)
        with torch.no_grad():
            before, after = unet(clips, timesteps, labels).sample, unet(clips, timesteps, changed).sample
        per_frame = (after - before).abs().amax(dim=(0, 1, 3, 4))  # (4,): how much each frame's prediction moved
        assert per_frame[2] > 0.1
        # The other frames move too, less: they see frame 2 through sparse-causal and temporal attention and
        # through the clip-wide GroupNorm statistics (as the model's docstring says).
        assert (per_frame[[0, 1, 3]] > 0).all() and (per_frame[[0, 1, 3]] < per_frame[2]).all()
        with pytest.raises(VidSynthError, match="trained with labels"):
            unet(clips, timesteps)
        if labels.dtype == torch.long:  # label_dropout: whole clips trained on the null class (id 4), for guidance
            clips_labels = labels.repeat(200, 1)
            dropped = diffusion.drop_labels(unet, clips_labels, 0.25, torch.Generator().manual_seed(0))
            null = (dropped == 4).all(dim=1)
            assert torch.equal(dropped[~null], clips_labels[~null]) and 0.15 < null.float().mean() < 0.35
    unconditional = build_unet(StageConfig(name="base", **TINY))
    with pytest.raises(VidSynthError, match="trained without labels"):
        unconditional(clips, timesteps, torch.tensor([[0, 1, 2, 3]]))


def test_attention_from_picks_the_first_level_with_attention_and_the_middle_always_has_it():
    def attended(unet) -> list[bool]:
        return [hasattr(block, "attentions") for block in [*unet.down_blocks, unet.mid_block]]

    assert attended(build_unet(StageConfig(name="base", **TINY))) == [False, True, True]
    assert attended(build_unet(StageConfig(name="base", **TINY, attention_from=0))) == [True, True, True]
    middle_only = build_unet(StageConfig(name="up", kind="upsampler", **TINY, attention_from=2))
    assert attended(middle_only) == [False, False, True]
    assert [hasattr(block, "attentions") for block in middle_only.up_blocks] == [False, False]
    clips = torch.randn(1, 6, 2, 16, 16)
    assert middle_only(clips, torch.tensor([10])).sample.shape == (1, 3, 2, 16, 16)


def test_an_upsampler_samples_the_residual_over_its_bicubic_input():
    """A model whose every noise prediction means "no residual" (x0 = 0) samples exactly the bicubic clip."""
    scheduler = DDPMScheduler(num_train_timesteps=1000, clip_sample=True)
    low = torch.rand(2, 3, 2, 8, 8) * 2 - 1

    class NoResidual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))  # ddim_sample reads the dtype off the parameters

        def forward(self, inputs, t, labels):
            alpha = scheduler.alphas_cumprod[int(t)]
            return type("Out", (), {"sample": inputs[:, :3] / (1 - alpha).sqrt()})

    clips = diffusion.ddim_sample(
        NoResidual(), scheduler.config, (2, 3, 2, 16, 16), None, low, 5, torch.Generator(), torch.device("cpu")
    )
    bicubic = torch.nn.functional.interpolate(low.transpose(1, 2).flatten(0, 1), size=16, mode="bicubic")
    assert torch.allclose(clips, bicubic.clamp(-1, 1).unflatten(0, (2, 2)).transpose(1, 2), atol=1e-4)


def test_two_hundred_steps_on_two_clips_lower_the_loss_on_a_held_out_batch(footage):
    from vidsynth.scratch.data import FootageWindows

    windows = FootageWindows(footage / "videos", num_frames=4, frame_skip=1, resolution=8)
    trained, held_out = [0, len(windows) - 1], [5, 9, 10, 12]  # windows of the same two videos, other frames

    def frames(indices: list[int]) -> set:
        return {(windows.window(i)[0].name, frame) for i in indices for frame in windows.window(i)[1]}

    def clips_of(indices: list[int]) -> torch.Tensor:
        return torch.stack([windows[i]["pixel_values"] for i in indices]).permute(0, 2, 1, 3, 4)

    assert not frames(trained) & frames(held_out)  # no frame of the held-out batch is trained on
    clips, unseen = clips_of(trained), clips_of(held_out)
    torch.manual_seed(0)
    unet = build_unet(StageConfig(name="base", **{**TINY, "resolution": 8}))
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=True)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-3)

    def held_out_loss() -> float:  # the same noise and timesteps (never trained on) before and after
        with torch.no_grad():
            draws = [torch.Generator().manual_seed(10_000 + i) for i in range(4)]
            return sum(diffusion.training_loss(unet, scheduler, unseen, None, None, g).item() for g in draws) / 4

    before = held_out_loss()
    for step in range(200):
        loss = diffusion.training_loss(unet, scheduler, clips, None, None, torch.Generator().manual_seed(step))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = held_out_loss()
    assert after < 0.3 * before, (before, after)  # about 1.13 -> 0.13


def test_a_killed_run_resumed_from_its_latest_checkpoint_ends_with_the_weights_of_an_uninterrupted_run(
    tmp_path, footage, monkeypatch
):
    changes = {"checkpoints_total_limit": 1, "gradient_accumulation_steps": 2, "validation_steps": 2}
    uninterrupted = write_config(tmp_path / "a.json", footage, tmp_path / "a", labels=False, **changes)
    interrupted = write_config(tmp_path / "b.json", footage, tmp_path / "b", labels=False, **changes)
    run_train(["--config", str(uninterrupted)])

    calls, loss = [], diffusion.training_loss

    def killed_in_step_3(*args):
        calls.append(len(calls))
        if len(calls) == 5:  # step 3's first micro-step: after checkpoint-2
            raise KeyboardInterrupt
        return loss(*args)

    monkeypatch.setattr(diffusion, "training_loss", killed_in_step_3)
    with pytest.raises(VidSynthError, match="2 of 4 steps done; .*checkpoint-2 kept"):
        run_train(["--config", str(interrupted)])
    assert not (tmp_path / "b" / "base").exists()
    calls.clear()
    run_train(["--config", str(interrupted), "resume_from_checkpoint=latest"])
    assert len(calls) == 4  # steps 3 and 4, two micro-steps each: steps 1-2 were not redone

    expected = load_file(tmp_path / "a" / "base" / "diffusion_pytorch_model.safetensors")
    got = load_file(tmp_path / "b" / "base" / "diffusion_pytorch_model.safetensors")
    assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)
    assert [p.name for p in (tmp_path / "a" / "checkpoints" / "base").iterdir()] == ["checkpoint-4"]  # limit 1
    assert sorted(p.name for p in (tmp_path / "b" / "samples").iterdir()) == ["base-2", "base-4"]
    assert (tmp_path / "b" / "samples" / "base-4" / "grid.gif").is_file()


@pytest.fixture(scope="module")
def cascade(tmp_path_factory, footage) -> Path:
    """A labelled run of a 16x16 base and a 16 -> 32 upsampler, two steps each."""
    folder = tmp_path_factory.mktemp("cascade")
    stages = [{"name": "base", **TINY}, {"name": "up", "kind": "upsampler", **TINY, "resolution": 32}]
    config = write_config(folder / "c.json", footage, folder / "run", stages=stages, max_train_steps=2)
    threads = torch.get_num_threads()  # one thread, as the tests: a module fixture runs before their fixture
    torch.set_num_threads(1)
    try:
        return run_train(["--config", str(config)])
    finally:
        torch.set_num_threads(threads)


def test_the_cascade_makes_clips_of_the_last_stages_size_with_the_frames_asked(cascade, tmp_path, caplog):
    from vidsynth.media.video import probe_video

    run = load_run(cascade)
    names = run.class_names  # the directions the footage shows, sorted
    assert [stage.name for stage, _ in run.stages] == ["base", "up"] and names == sorted(names) and len(names) > 1
    first, last = names[0], names[-1]
    labels = [[first] * 3 + [last] * 3, [0, 1, 1, 0, 1, 0]]  # names or class ids; 6 frames, the run trained on 4
    clips = sample_cascade(run, labels, num_frames=6, steps=2, seed=0)
    assert clips.shape == (2, 6, 3, 32, 32) and clips.min() >= -1 and clips.max() <= 1
    base = sample_cascade(run, labels, num_frames=6, steps=2, seed=0, upto_stage="base")
    assert base.shape == (2, 6, 3, 16, 16)
    # Classifier-free guidance: the null class (trained in place of labels, label_dropout) pushed away from.
    guided = sample_cascade(run, labels, num_frames=6, steps=2, seed=0, upto_stage="base", guidance_scale=3.0)
    assert guided.shape == base.shape and not torch.equal(guided, base)
    assert run.stages[0][1].null_labels(torch.tensor([[0, 1]])).tolist() == [[len(names)] * 2]

    out = tmp_path / "samples"
    generate.main(
        ["--run", str(cascade), "--labels", f"{first}:3,{last}:3", "--num", "2", "--steps", "2", "--out", str(out)]
    )
    assert sorted(p.name for p in out.iterdir()) == ["0.mp4", "1.mp4", "grid.gif", "samples.json"]
    sidecar = json.loads((out / "samples.json").read_text())
    assert (sidecar["size"], sidecar["frames"], sidecar["stage"]) == (32, 6, "up")
    assert [s["labels"] for s in sidecar["samples"]] == [f"{first}:3,{last}:3"] * 2
    ranges = tmp_path / "ranges.csv"  # the training labels' format, for one clip: frames 0-1 first, 2-5 last
    ranges.write_text(f"start_frame,end_frame,label\n0,2,{first}\n2,6,{last}\n")
    by_file = tmp_path / "by-file"
    generate.main(
        ["--run", str(cascade), "--labels", str(ranges), "--frames", "6", "--num", "1", "--out", f"{by_file}"]
    )
    assert json.loads((by_file / "samples.json").read_text())["samples"][0]["labels"] == f"{first}:2,{last}:4"
    video = probe_video(out / "0.mp4")
    assert (video.num_frames, video.width, video.height, video.fps) == (6, 32, 32, 4.0)  # 8 fps, every 2nd frame

    # Bad requests: one line, exit 2, no output folder.
    bad = tmp_path / "bad"
    asks = {
        f"unknown label 'sideways': the model knows {', '.join(names)}": ["--label", "sideways"],
        f"{last!r} is not name:count": ["--labels", f"{first}:3,{last}"],
        "--labels give 6 frames but --frames is 4": ["--labels", f"{first}:3,{last}:3", "--frames", "4"],
        "--guidance must be 1 (no guidance) or more, got 0.5": ["--guidance", "0.5"],
        "frame 6 of the 8 has no label": ["--labels", str(ranges), "--frames", "8"],
    }
    for message, ask in asks.items():
        assert message in exit_line(caplog, generate.main, ["--run", str(cascade), *ask, "--out", str(bad)])
    unconditional = tmp_path / "unconditional"
    unconditional.mkdir()
    for name in ("config.yaml", "data.json", "base"):
        (unconditional / name).symlink_to(cascade / name)
    (unconditional / "data.json").unlink()
    (unconditional / "data.json").write_text(
        json.dumps({**json.loads((cascade / "data.json").read_text()), "class_names": None})
    )
    line = exit_line(caplog, generate.main, ["--run", str(unconditional), "--label", first, "--out", str(bad)])
    assert line == "this model was trained without labels. Sample it without --labels/--label"
    assert not bad.exists()


def test_bad_configs_are_refused_before_anything_is_written(tmp_path, footage, caplog):
    out = tmp_path / "run"
    cases = {
        "resolution 18 is not divisible by 4, the UNet's down-sampling factor (3 levels). Use 16 or 20": [
            {"name": "base", **TINY, "resolution": 18, "block_out_channels": [16, 32, 32]}
        ],
        "upsampler stage 'up' has no base before it": [{"name": "up", "kind": "upsampler", **TINY}],
        "attention_from 3 is beyond its 2 levels. Use at most 2": [{"name": "base", **TINY, "attention_from": 3}],
        "unknown config key 'stages[1].layres'": [
            {"name": "base", **TINY},
            {"name": "up", "kind": "upsampler", "layres": 2},
        ],
    }
    for message, stages in cases.items():
        config = write_config(tmp_path / "c.json", footage, out, stages=stages)
        assert message in exit_line(caplog, train.main, ["--config", str(config)])
    assert "Did you mean 'stages[1].layers'?" in exit_line(caplog, train.main, ["--config", str(config)])
    no_videos = write_config(
        tmp_path / "c.json", footage, out, labels=False, data={"path": str(tmp_path), "num_frames": 4}
    )
    assert "resume_from_checkpoint takes latest" in exit_line(
        caplog, train.main, ["--config", str(no_videos), "resume_from_checkpoint=checkpoint-3"]
    )
    assert "config key 'data.num_workers' must be at least 0; got -1" in exit_line(
        caplog, train.main, ["--config", str(no_videos), "data.num_workers=-1"]
    )
    assert exit_line(caplog, train.main, ["--config", str(no_videos)]).startswith("No videos")
    assert not out.exists()
