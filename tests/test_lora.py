"""LoRA tuning (lora_rank) on the tiny SD: the adapters start as the identity, the result reloads exactly, stacks with
community LoRAs, and bad input is refused in one line."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vidsynth import VideoUNet, inference, train
from vidsynth.cli import run_main
from vidsynth.media.scene import render_scene
from vidsynth.models.lora import METADATA_KEY, LoraSpec
from vidsynth.models.lora_stack import StyleLora, apply_loras
from vidsynth.models.trainable import read_trained_metadata
from vidsynth.pipelines import ModelSource, load_pipeline
from vidsynth.run_folder import LORA_FILE, RunFolder
from vidsynth.training import loop
from vidsynth.training import result as tuning_result
from vidsynth.training.step import diffusion_loss
from vidsynth.training.unet_setup import prepare_unet

REPO = Path(__file__).resolve().parents[1]
TRAINABLE = ["attn1.to_q", "attn2.to_q", "attn_temp"]
BLOCK = "down_blocks.0.attentions.0.transformer_blocks.0"  # a transformer block of the tiny UNet (and of SD-1.x)


pytestmark = pytest.mark.usefixtures("one_thread")  # bit-identical results, no fight for the cores


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=12, width=48, height=48)


def write_config(path: Path, tiny_sd: Path, clip: Path, output_dir: Path, **changes) -> Path:
    config = {
        "pretrained_model_path": str(tiny_sd),
        "output_dir": str(output_dir),
        "train_data": {"video_path": str(clip), "prompt": "a ball", "n_sample_frames": 4, "width": 32, "height": 32},
        "validation_data": {"prompts": []},
        "max_train_steps": 3,
        "checkpointing_steps": 100,
        "learning_rate": 1e-2,  # large, so that a few steps move the adapters visibly
        "gradient_checkpointing": False,
        **changes,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_train(argv: list[str]) -> Path:
    try:
        return train.main(argv)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def tune(tmp_path: Path, tiny_sd: Path, clip: Path, monkeypatch, **changes) -> tuple[Path, VideoUNet]:
    """A tuning run; returns its folder and the tuned UNet exactly as train.py held it when writing the result."""
    held = {}

    def keep(unet, *args):
        held["unet"] = unet
        return write_result(unet, *args)

    write_result = tuning_result.write_result
    monkeypatch.setattr(tuning_result, "write_result", keep)
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "run"
    run_train(["--config", str(write_config(tmp_path / "c.yaml", tiny_sd, clip, out, **changes))])
    # As a model for editing: eval mode, no gradients (CPU kernels differ in the last bit between weights that
    # require a gradient and weights that do not).
    return out, held["unet"].eval().requires_grad_(False)


def unet_inputs(unet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 3, 4, 4, generator=generator)
    text = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator)
    return sample, torch.tensor(400), text


def predict(unet) -> torch.Tensor:
    with torch.no_grad():
        return unet(*unet_inputs(unet)).sample


def load_run(run: Path, lora_scale: float = 1.0, styles=(), fuse: bool = True):
    pipe = load_pipeline(ModelSource("trained", str(run / "tuned_unet.safetensors"), base=str(tiny_base(run))))
    apply_loras(pipe, lora_scale, list(styles), fuse=fuse)
    return pipe


def tiny_base(run: Path) -> str:
    return read_trained_metadata(run / "tuned_unet.safetensors")["base_model"]


@pytest.fixture(scope="module")
def lora_run(tiny_sd, clip, tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """A rank-4 LoRA run (temporal layers tuned fully) and its tuned UNet's prediction."""
    validation = {"prompts": ["a red ball"], "video_length": 4, "width": 32, "height": 32}
    validation |= {"num_inference_steps": 1, "num_inv_steps": 1}
    changes = {"lora_rank": 4, "lora_alpha": 8, "validation_data": validation, "validation_steps": 3}
    with pytest.MonkeyPatch.context() as monkeypatch:
        run, unet = tune(tmp_path_factory.mktemp("lora"), tiny_sd, clip, monkeypatch, **changes)
    assert (run / "samples" / "sample-3" / "grid.gif").is_file()  # validation renders with the adapters
    return run, predict(unet)


@pytest.mark.parametrize("temporal", [False, True], ids=["pretrained-projections", "with-temporal-layers"])
def test_at_initialisation_the_lora_unet_predicts_exactly_as_the_unadapted_one(tiny_sd, temporal):
    spec = LoraSpec(rank=4, alpha=4.0, targets=("attn1.to_q", "attn2.to_q"), temporal=temporal, init_seed=5)
    plain = VideoUNet.from_pretrained_2d(tiny_sd)
    adapted = VideoUNet.from_pretrained_2d(tiny_sd)
    trained = prepare_unet(adapted, TRAINABLE, gradient_checkpointing=False, lora=spec)
    if temporal:  # the un-adapted UNet with the same seeded temporal start
        prepare_unet(plain, TRAINABLE, gradient_checkpointing=False, lora=spec)
        plain.unload_lora()
    names = [name for name, param in adapted.named_parameters() if param.requires_grad]
    assert any(".lora_A." in name for name in names) and len(trained) == len(names)
    assert any("attn_temp.to_q.lora_A" in name for name in names) == temporal
    assert any(name.endswith("attn_temp.to_q.weight") for name in names) == (not temporal)  # else trained fully
    assert torch.equal(predict(adapted.eval()), predict(plain.eval()))


def test_lora_result_reloads_exactly_fuses_within_1e_5_and_scale_0_is_the_run_without_adapters(lora_run):
    run, tuned = lora_run
    with safe_open(run / LORA_FILE, framework="pt") as f:
        metadata = json.loads(f.metadata()[METADATA_KEY])  # VidSynth's, beside diffusers' own keys
    assert metadata["lora"] == {
        "rank": 4,
        "alpha": 8.0,
        "targets": ["attn1.to_q", "attn2.to_q"],
        "dropout": 0.0,
        "temporal": False,
        "init_seed": None,
    }
    assert metadata["frame_norm"] == "joint" and metadata["seed"] == 33
    assert torch.equal(predict(load_run(run, fuse=False).unet), tuned)
    assert torch.allclose(predict(load_run(run).unet), tuned, atol=1e-5, rtol=0)  # fused
    half = predict(load_run(run, lora_scale=0.5, fuse=False).unet)
    assert torch.allclose(predict(load_run(run, lora_scale=0.5).unet), half, atol=1e-5, rtol=0)
    assert not torch.allclose(half, tuned, atol=1e-4)

    without = load_run(run, fuse=False)
    without.unet.unload_lora()  # the tuned run with its adapters removed: base projections, tuned temporal layers
    base_projections = predict(without.unet)
    assert not torch.allclose(base_projections, tuned, atol=1e-4)  # the adapters did learn something
    assert torch.equal(predict(load_run(run, lora_scale=0.0).unet), base_projections)


def test_a_full_pipeline_of_a_lora_run_has_the_adapters_fused_in(lora_run, tmp_path):
    run, tuned = lora_run
    folder = tuning_result.write_pipeline(run / "tuned_unet.safetensors", tiny_base(run), tmp_path / "pipeline")
    unet = load_pipeline(ModelSource("pipeline", str(folder))).unet
    assert not getattr(unet, "peft_config", None)  # plain weights: any diffusers loader reads them
    assert torch.allclose(predict(unet), tuned, atol=1e-5, rtol=0)


def test_lora_temporal_result_loads_in_a_fresh_process_exactly_and_is_smaller(tiny_sd, clip, tmp_path, monkeypatch):
    run, unet = tune(tmp_path / "adapters", tiny_sd, clip, monkeypatch, lora_rank=4, lora_temporal=True)
    expected = predict(unet)
    assert read_trained_metadata(run / "tuned_unet.safetensors")["lora"]["init_seed"] == 33
    script = (
        "import sys, torch\n"
        "from tests.test_lora import load_run, predict\n"
        "from pathlib import Path\n"
        "torch.set_num_threads(1)\n"
        "torch.save(predict(load_run(Path(sys.argv[1]), fuse=False).unet), sys.argv[2])\n"
    )
    saved = tmp_path / "prediction.pt"
    proc = subprocess.run(
        [sys.executable, "-c", script, str(run), str(saved)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.equal(torch.load(saved, weights_only=True), expected)

    full_run, _ = tune(tmp_path / "full", tiny_sd, clip, monkeypatch, max_train_steps=1)
    adapters_only, full = RunFolder(run).result_bytes(), RunFolder(full_run).result_bytes()
    print(f"result bytes on the tiny model: lora_temporal {adapters_only}, full tuning {full}")
    assert adapters_only < full / 2


def community_lora(path: Path, unet, kind: str, width: int | None = None) -> Path:
    """A LoRA file with the real key layout of diffusers' (``unet.<module>.lora_A.weight``) or kohya's format
    (``lora_unet_<module with _>.lora_down.weight`` and ``.alpha``) on every attention projection of one block."""
    generator = torch.Generator().manual_seed(1)
    tensors = {}
    for projection in ("attn1.to_q", "attn1.to_v", "attn2.to_k", "attn2.to_v"):
        layer = unet.get_submodule(f"{BLOCK}.{projection}")
        layer = getattr(layer, "base_layer", layer)
        inputs = width if width and projection.startswith("attn2.to_") else layer.in_features
        down = torch.randn(2, inputs, generator=generator) * 0.5
        up = torch.randn(layer.out_features, 2, generator=generator) * 0.5
        if kind == "kohya":
            name = "lora_unet_" + f"{BLOCK}.{projection}".replace(".", "_")
            tensors |= {
                f"{name}.lora_down.weight": down,
                f"{name}.lora_up.weight": up,
                f"{name}.alpha": torch.tensor(2.0),
            }
        else:
            tensors |= {
                f"unet.{BLOCK}.{projection}.lora_A.weight": down,
                f"unet.{BLOCK}.{projection}.lora_B.weight": up,
            }
    save_file(tensors, path)
    return path


@pytest.mark.parametrize("kind", ["diffusers", "kohya"])
def test_a_community_lora_stacks_with_a_tuned_run(lora_run, tmp_path, kind):
    run, _ = lora_run
    alone = predict(load_run(run).unet)
    style = community_lora(tmp_path / "style.safetensors", load_run(run, fuse=False).unet, kind)
    stacked = predict(load_run(run, styles=[StyleLora(str(style), 1.0)]).unet)
    assert not torch.allclose(stacked, alone, atol=1e-4)  # its effect shows
    assert torch.equal(predict(load_run(run, styles=[StyleLora(str(style), 0.0)]).unet), alone)


def run_cli(main, argv: list[str], caplog) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        try:
            run_main(lambda: main(argv))
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors  # one line
    return exit_info.value.code, errors[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lora_rank=0"], "config key 'lora_rank' must be at least 1; got 0. Set e.g. lora_rank=4, or lora_rank=null"),
        (["lora_rank=-1"], "config key 'lora_rank' must be at least 1; got -1"),
        (["lora_alpha=8"], "lora_alpha set, but tuning is full (lora_rank: null). Set lora_rank (e.g. 4), or drop"),
        (
            ["lora_rank=4", "lora_target_modules=[attn3.to_q]"],
            "lora_target_modules entry 'attn3.to_q' matches no pretrained Linear layer of the UNet. Use suffixes "
            "among: attn1.to_k, attn1.to_out.0, attn1.to_q, attn1.to_v, attn2.to_k, attn2.to_out.0, attn2.to_q",
        ),
    ],
)
def test_bad_lora_keys_are_refused_in_one_line_before_loading(tmp_path, tiny_sd, clip, caplog, overrides, message):
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", tiny_sd, clip, out)
    code, error = run_cli(train.main, ["--config", str(config), *overrides], caplog)
    assert code == 2 and message in error, error
    assert not out.exists()


def test_a_lora_for_another_base_or_a_missing_file_is_refused_in_one_line_before_sampling(
    lora_run, tmp_path, caplog, monkeypatch
):
    run, _ = lora_run
    sd2 = community_lora(tmp_path / "sd2.safetensors", load_run(run, fuse=False).unet, "diffusers", width=1024)
    monkeypatch.setattr(load_pipeline.__globals__["TuneAVideoPipeline"], "__call__", pytest.fail)  # no sampling
    argv = ["--run", str(run), "--prompt", "a ball", "--steps", "1", "--no-inversion", "--out", str(tmp_path / "o")]
    code, error = run_cli(inference.main, [*argv, "--lora", f"{sd2}:0.5"], caplog)
    assert code == 2 and not (tmp_path / "o").exists()
    assert (
        f"LoRA {sd2} does not fit this model: its {BLOCK}.attn2.to_k has 1024-wide inputs but this model's has" in error
    )
    code, error = run_cli(inference.main, [*argv, "--lora", str(tmp_path / "nope.safetensors")], caplog)
    assert code == 2 and f"LoRA {tmp_path / 'nope.safetensors'} not found" in error


def test_full_tuning_over_a_lora_run_leaves_no_adapters_behind(tmp_path, tiny_sd, clip, monkeypatch):
    run, _ = tune(tmp_path, tiny_sd, clip, monkeypatch, lora_rank=4, max_train_steps=1)
    assert (run / LORA_FILE).is_file()
    again, _ = tune(tmp_path, tiny_sd, clip, monkeypatch, max_train_steps=1, overwrite=True)
    assert again == run and not (run / LORA_FILE).exists()  # else the full result would load as a LoRA run
    assert read_trained_metadata(run / "tuned_unet.safetensors").get("lora") is None


def test_an_edit_of_a_lora_run_with_a_stacked_lora_records_them(lora_run, tmp_path):
    run, _ = lora_run
    style = community_lora(tmp_path / "style.safetensors", load_run(run, fuse=False).unet, "kohya")
    out = tmp_path / "edit"
    argv = ["--run", str(run), "--prompt", "a ball", "--steps", "1", "--inversion-steps", "1", "--format", "mp4"]
    inference.main([*argv, "--lora-scale", "0.5", "--lora", f"{style}:0.7", "--out", str(out)])
    (sidecar,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sidecar["lora"] == {"scale": 0.5, "stacked": [{"lora": str(style), "scale": 0.7}]}
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["lora_scale"], saved["loras"]) == (0.5, [f"{style}:0.7"])


class Killed(Exception):
    """Stands in for a kill: raised from inside a training step."""


@pytest.mark.parametrize(
    "changes",
    [{}, {"lora_temporal": True, "frozen_dtype": "bf16", "use_8bit_adam": True}],
    ids=["temporal-layers-full", "adapters-only-bf16-frozen-8bit-adam"],
)
def test_killed_lora_run_resumed_ends_with_identical_files(tmp_path, tiny_sd, clip, monkeypatch, changes):
    settings = {"lora_rank": 4, "max_train_steps": 4, "checkpointing_steps": 2, **changes}
    uninterrupted = write_config(tmp_path / "a.yaml", tiny_sd, clip, tmp_path / "a", **settings)
    interrupted = write_config(tmp_path / "b.yaml", tiny_sd, clip, tmp_path / "b", **settings)
    run_train(["--config", str(uninterrupted)])

    calls = []

    def killed_in_step_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return diffusion_loss(*args, **kwargs)

    monkeypatch.setattr(loop, "diffusion_loss", killed_in_step_3)
    with pytest.raises(Killed):
        run_train(["--config", str(interrupted)])
    checkpoint = load_file(tmp_path / "b" / "checkpoints" / "checkpoint-2" / "trained_params.safetensors")
    assert any(".lora_A." in name for name in checkpoint)  # the adapters are in the checkpoint
    monkeypatch.setattr(loop, "diffusion_loss", diffusion_loss)
    run_train(["--config", str(interrupted), "resume_from_checkpoint=latest"])

    for name in ("tuned_unet.safetensors", LORA_FILE):
        expected, got = load_file(tmp_path / "a" / name), load_file(tmp_path / "b" / name)
        assert set(got) == set(expected)
        assert all(torch.equal(got[key], expected[key]) for key in expected)
    adapters = load_file(tmp_path / "a" / LORA_FILE)
    assert {t.dtype for t in adapters.values()} == {torch.float32}  # trained in float32 beside bf16 frozen weights
    temporal = [key for key in adapters if "attn_temp" in key]
    assert bool(temporal) == bool(changes) and (len(load_file(tmp_path / "a" / "tuned_unet.safetensors")) == 0) == bool(
        changes
    )
