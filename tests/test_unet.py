"""The video UNet: exact inflation, the attention variants, frame norms, gradients, files."""

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention

from vidsynth import VideoUNet
from vidsynth.errors import VidSynthError
from vidsynth.models.attention import SparseCausalAttnProcessor
from vidsynth.models.trainable import (
    DEFAULT_TRAINABLE_MODULES,
    load_trained,
    read_trained_metadata,
    save_trained,
    select_trainable,
)
from vidsynth.models.unet import TEMPORAL_KEY_SUFFIXES
from vidsynth.testing.tiny_sd import build_tiny_sd


@pytest.fixture(scope="module")
def unet_2d(tiny_sd):
    return UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet").eval()


def video_unet(path, **options) -> VideoUNet:
    return VideoUNet.from_pretrained_2d(path, **options).eval()


def inputs(batch=1, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, frames, 8, 8, generator=g)  # (b, c, f, h, w)
    context = torch.randn(batch, 77, 32, generator=g)
    return sample, torch.tensor([500] * batch), context


def test_tiny_checkpoint_loads_and_runs_as_a_stable_diffusion_pipeline(tiny_sd, tmp_path):
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a man is skiing",
        height=32,
        width=48,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (1, 32, 48, 3) and np.isfinite(images).all()
    ids = pipe.tokenizer("a man is skiing", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == pipe.tokenizer.bos_token_id
    assert pipe.tokenizer.decode(ids, skip_special_tokens=True).strip() == "a man is skiing"
    # The same seed writes the same checkpoint (the tests' fixtures rely on it); another seed does not.
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert (build_tiny_sd(tmp_path / "again", seed=0) / weights).read_bytes() == (tiny_sd / weights).read_bytes()
    assert (build_tiny_sd(tmp_path / "other", seed=1) / weights).read_bytes() != (tiny_sd / weights).read_bytes()


@torch.no_grad()
def test_one_frame_equals_the_2d_unet(tiny_sd, unet_2d):
    unet = video_unet(tiny_sd)
    sample, t, context = inputs(frames=1)
    expected = unet_2d(sample[:, :, 0], t, context).sample
    got = unet(sample, t, context).sample[:, :, 0]
    assert (got - expected).abs().max() <= 1e-5


@torch.no_grad()
@pytest.mark.parametrize("frame_norm", ["joint", "per_frame"])
def test_identical_frames_each_equal_the_2d_unet(tiny_sd, unet_2d, frame_norm):
    unet = video_unet(tiny_sd, frame_norm=frame_norm)
    sample, t, context = inputs(batch=2, frames=1)
    clip = sample.repeat(1, 1, 4, 1, 1)  # (2, 4, 4 frames, 8, 8), all frames alike
    expected = unet_2d(sample[:, :, 0], t, context).sample
    got = unet(clip, t, context).sample
    for i in range(4):
        assert (got[:, :, i] - expected).abs().max() <= 1e-5


def test_sparse_causal_processor_matches_the_written_out_formula():
    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8, processor=SparseCausalAttnProcessor())
    batch, frames, tokens = 2, 4, 5
    x = torch.randn(batch * frames, tokens, 16)
    got = attn(x, num_frames=frames)

    def heads(t):  # (n, 16) -> (2, n, 8)
        return t.view(t.shape[0], 2, 8).transpose(0, 1)

    clips = x.view(batch, frames, tokens, 16)
    expected = torch.empty_like(got).view(batch, frames, tokens, 16)
    for b in range(batch):
        for i in range(frames):
            kv_tokens = torch.cat([clips[b, 0], clips[b, max(i - 1, 0)]])  # (2n, c): frame 0 then frame i-1
            q, k, v = heads(attn.to_q(clips[b, i])), heads(attn.to_k(kv_tokens)), heads(attn.to_v(kv_tokens))
            weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)  # (2, n, 2n)
            out = (weights @ v).transpose(0, 1).reshape(tokens, 16)
            expected[b, i] = attn.to_out[0](out)
    assert torch.allclose(got, expected.view_as(got), atol=1e-6)


def test_sparse_causal_attention_never_lets_frame_i_see_itself():
    torch.manual_seed(0)
    attn = Attention(query_dim=8, heads=1, dim_head=8, processor=SparseCausalAttnProcessor())
    x = torch.randn(3, 4, 8)  # one clip of 3 frames
    base = attn(x, num_frames=3)
    changed = x.clone()
    changed[2] += 1.0  # the last frame is never a key/value of anyone but its successor
    out = attn(changed, num_frames=3)
    assert torch.equal(out[:2], base[:2])
    with pytest.raises(ValueError, match="num_frames"):
        attn(x)


@torch.no_grad()
def test_causality_per_frame_norm_versus_joint_norm(tiny_sd):
    sample, t, context = inputs(frames=4)
    changed = sample.clone()
    changed[:, :, -1] = torch.randn_like(changed[:, :, -1])
    per_frame = video_unet(tiny_sd, frame_norm="per_frame")
    a, b = per_frame(sample, t, context).sample, per_frame(changed, t, context).sample
    assert torch.equal(a[:, :, :3], b[:, :, :3])
    assert not torch.equal(a[:, :, 3], b[:, :, 3])
    joint = video_unet(tiny_sd, frame_norm="joint")
    a, b = joint(sample, t, context).sample, joint(changed, t, context).sample
    assert (a[:, :, :3] - b[:, :, :3]).abs().max() > 1e-4


def test_state_dict_is_the_2d_keys_plus_seven_temporal_keys_per_block(tiny_sd, unet_2d):
    unet = video_unet(tiny_sd)
    blocks = [name for name, m in unet_2d.named_modules() if isinstance(m, BasicTransformerBlock)]
    assert len(blocks) == 6
    expected_new = {f"{block}.{suffix}" for block in blocks for suffix in TEMPORAL_KEY_SUFFIXES}
    keys_2d = set(unet_2d.state_dict())
    assert set(unet.state_dict()) == keys_2d | expected_new
    assert unet.temporal_keys() == expected_new
    for key, value in unet_2d.state_dict().items():
        assert torch.equal(unet.state_dict()[key], value), key
    out_weights = [p for name, p in unet.named_parameters() if name.endswith("attn_temp.to_out.0.weight")]
    out_biases = [p for name, p in unet.named_parameters() if name.endswith("attn_temp.to_out.0.bias")]
    assert all(not p.any() for p in out_weights + out_biases)
    pytorch_init = video_unet(tiny_sd, temporal_out_bias_init="pytorch")
    assert any(p.any() for n, p in pytorch_init.named_parameters() if n.endswith("attn_temp.to_out.0.bias"))


def test_inflation_in_place_keeps_the_loaded_tensors_and_matches_a_fresh_build(tiny_sd):
    loaded = UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet")
    storage = {key: value.data_ptr() for key, value in loaded.state_dict().items()}
    unet = VideoUNet.inflate(loaded, frame_norm="per_frame")
    assert unet is loaded and isinstance(unet, VideoUNet)
    state = unet.state_dict()
    assert {key: state[key].data_ptr() for key in storage} == storage  # no copy of the pretrained weights
    fresh = VideoUNet.from_config(unet.config)  # the same model built from its config
    assert fresh.config.frame_norm == "per_frame"
    assert set(fresh.state_dict()) == set(state)
    assert {n: type(m) for n, m in fresh.named_modules()} == {n: type(m) for n, m in unet.named_modules()}
    fresh.load_state_dict(state)
    sample, t, context = inputs()
    with torch.no_grad():
        assert torch.equal(fresh.eval()(sample, t, context).sample, unet.eval()(sample, t, context).sample)


def gradients(unet, checkpointing: bool) -> dict[str, torch.Tensor | None]:
    select_trainable(unet, DEFAULT_TRAINABLE_MODULES)
    unet.train()
    if checkpointing:
        unet.enable_gradient_checkpointing()
    sample, t, context = inputs(frames=3)
    unet(sample, t, context).sample.pow(2).mean().backward()
    return {name: p.grad for name, p in unet.named_parameters()}


def test_gradient_checkpointing_trains_every_selected_parameter(tiny_sd):
    unet = video_unet(tiny_sd)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if name.endswith("attn_temp.to_out.0.weight"):
                p.normal_(0, 0.1)
    reference = gradients(video_unet(tiny_sd), checkpointing=False)
    grads = gradients(unet, checkpointing=True)
    trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert any(".down_blocks.0." in f".{n}" for n in trainable)
    assert trainable == {n for n in grads if any(f"{s}." in n for s in DEFAULT_TRAINABLE_MODULES)}
    for name, grad in grads.items():
        if name in trainable:
            assert grad is not None and grad.abs().sum() > 0, f"{name} got no gradient"
        else:
            assert grad is None, f"frozen {name} got a gradient"
    # At init the zero output projection blocks every gradient into attn_temp's q/k/v.
    for name, grad in reference.items():
        if "attn_temp.to_" in name and ".to_out." not in name:
            assert grad is not None and not grad.any()


@torch.no_grad()
def test_trained_parameter_file_round_trip_is_bit_exact(tiny_sd, tmp_path):
    unet = video_unet(tiny_sd)
    names = select_trainable(unet, DEFAULT_TRAINABLE_MODULES)
    for name, p in unet.named_parameters():
        if name in names or name in unet.temporal_keys():
            p.add_(torch.randn_like(p) * 0.05)
    path = save_trained(
        unet,
        tmp_path / "tuned.safetensors",
        base_model=str(tiny_sd),
        trainable_modules=DEFAULT_TRAINABLE_MODULES,
        extra_metadata={"prompt": "a ball"},
    )
    meta = read_trained_metadata(path)
    assert meta["base_model"] == str(tiny_sd) and meta["prompt"] == "a ball"
    assert meta["trainable_modules"] == list(DEFAULT_TRAINABLE_MODULES) and meta["frame_norm"] == "joint"
    fresh = video_unet(tiny_sd)
    load_trained(fresh, path)
    sample, t, context = inputs(frames=3)
    assert torch.equal(fresh(sample, t, context).sample, unet(sample, t, context).sample)
    assert not list(tmp_path.glob(".*tmp"))


def tensor_bytes(path) -> int:
    """Bytes of tensor data in a safetensors file: its size less the 8-byte length and the JSON header."""
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
    return path.stat().st_size - 8 - header


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@torch.no_grad()
def test_trained_parameter_file_in_16_bits_is_half_the_size_and_loads_into_float32(tiny_sd, tmp_path, dtype):
    unet = video_unet(tiny_sd)
    names = select_trainable(unet, DEFAULT_TRAINABLE_MODULES)
    for name, p in unet.named_parameters():
        if name in names or name in unet.temporal_keys():
            p.add_(torch.randn_like(p) * 0.05)
    exact = save_trained(unet, tmp_path / "fp32.safetensors", str(tiny_sd), DEFAULT_TRAINABLE_MODULES)
    half = save_trained(unet, tmp_path / "half.safetensors", str(tiny_sd), DEFAULT_TRAINABLE_MODULES, dtype=dtype)
    assert 2 * tensor_bytes(half) == tensor_bytes(exact)
    assert half.stat().st_size < 0.6 * exact.stat().st_size
    fresh = video_unet(tiny_sd)
    load_trained(fresh, half)
    tuned = dict(unet.named_parameters())
    step = torch.finfo(dtype).eps  # relative rounding step of the saved values
    for name, param in fresh.named_parameters():
        assert param.dtype == torch.float32, name
        torch.testing.assert_close(param, tuned[name], rtol=step, atol=1e-6)
    sample, t, context = inputs(frames=3)
    torch.testing.assert_close(fresh(sample, t, context).sample, unet(sample, t, context).sample, rtol=0, atol=step)


def test_trained_parameter_file_with_wrong_keys_is_refused(tiny_sd, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    unet = video_unet(tiny_sd)
    path = save_trained(unet, tmp_path / "tuned.safetensors", str(tiny_sd), DEFAULT_TRAINABLE_MODULES)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    dropped = dict(tensors)
    dropped.pop(sorted(dropped)[0])
    save_file(dropped, tmp_path / "missing.safetensors", metadata=metadata)
    with pytest.raises(VidSynthError, match="1 missing keys"):
        load_trained(video_unet(tiny_sd), tmp_path / "missing.safetensors")
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, tmp_path / "extra.safetensors", metadata=metadata)
    with pytest.raises(VidSynthError, match="1 unexpected keys"):
        load_trained(video_unet(tiny_sd), tmp_path / "extra.safetensors")
    with pytest.raises(VidSynthError, match="frame_norm"):
        load_trained(video_unet(tiny_sd, frame_norm="per_frame"), path)


@torch.no_grad()
def test_full_save_reloads_inflated_and_strict(tiny_sd, tmp_path):
    unet = video_unet(tiny_sd, frame_norm="per_frame")
    for name, p in unet.named_parameters():
        if "attn_temp" in name:
            p.normal_(0, 0.1)
    unet.save_pretrained(tmp_path / "video-unet")
    config = json.loads((tmp_path / "video-unet" / "config.json").read_text())
    assert config["_class_name"] == "VideoUNet" and config["frame_norm"] == "per_frame"
    loaded = VideoUNet.from_pretrained(tmp_path / "video-unet").eval()
    assert loaded.config.frame_norm == "per_frame"
    sample, t, context = inputs(frames=3)
    assert torch.equal(loaded(sample, t, context).sample, unet(sample, t, context).sample)
    with pytest.raises(VidSynthError, match="from_pretrained_2d"):
        VideoUNet.from_pretrained(tiny_sd, subfolder="unet")


@torch.no_grad()
def test_bin_weights_and_original_tune_a_video_folders_load(tiny_sd, unet_2d, tmp_path):
    unet_2d.save_pretrained(tmp_path / "bin-unet", safe_serialization=False)
    assert (tmp_path / "bin-unet" / "diffusion_pytorch_model.bin").is_file()
    from_bin = VideoUNet.from_pretrained_2d(tmp_path / "bin-unet", subfolder=None).eval()
    sample, t, context = inputs(frames=2)
    assert torch.equal(from_bin(sample, t, context).sample, video_unet(tiny_sd)(sample, t, context).sample)

    # An original Tune-A-Video unet/ folder: 3-D block names, .bin weights with attn_temp keys.
    tuned = VideoUNet.from_pretrained_2d(tiny_sd, temporal_out_bias_init="pytorch").eval()
    folder = tmp_path / "tav-unet"
    folder.mkdir()
    config = dict(unet_2d.config, _class_name="UNet3DConditionModel")
    config["down_block_types"] = ["CrossAttnDownBlock3D", "DownBlock3D"]
    config["up_block_types"] = ["UpBlock3D", "CrossAttnUpBlock3D"]
    config["mid_block_type"] = "UNetMidBlock3DCrossAttn"
    (folder / "config.json").write_text(json.dumps(config, default=str))
    torch.save(tuned.state_dict(), folder / "diffusion_pytorch_model.bin")
    original = VideoUNet.from_tuneavideo(folder).eval()
    assert torch.equal(original(sample, t, context).sample, tuned(sample, t, context).sample)


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_runs_in_every_precision(tiny_sd, dtype):
    unet = video_unet(tiny_sd, torch_dtype=dtype)
    sample, t, context = inputs(frames=2)
    out = unet(sample.to(dtype), t, context.to(dtype)).sample
    assert out.dtype == dtype and out.shape == sample.shape and torch.isfinite(out).all()
    reference = video_unet(tiny_sd)(sample, t, context).sample
    assert (out.float() - reference).abs().max() < 0.1


def test_all_attention_layers_use_the_video_processors(tiny_sd):
    unet = video_unet(tiny_sd)
    kinds = {name.split(".")[-2]: type(p).__name__ for name, p in unet.attn_processors.items()}
    assert kinds == {
        "attn1": "SparseCausalAttnProcessor",
        "attn2": "FramesAttnProcessor",
        "attn_temp": "TemporalAttnProcessor",
    }
    assert any(name.startswith("mid_block.") for name in unet.attn_processors)
