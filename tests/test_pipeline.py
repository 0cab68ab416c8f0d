"""The editing pipeline: guidance, seeds, clip encoding, input checks, shared inversion, save/load round trips."""

import json

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from vidsynth.config.inference import InferenceConfig
from vidsynth.editing.render import render_edits
from vidsynth.errors import VidSynthError
from vidsynth.models import VideoUNet
from vidsynth.pipelines import ModelSource, TuneAVideoPipeline, load_pipeline
from vidsynth.pipelines.loading import is_tuneavideo_folder

PROMPT = "a man is skiing"
FRAMES, SIZE = 3, 32  # 32 px -> 4x4 latents


def sample(pipe: TuneAVideoPipeline, seed: int, **kwargs) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return pipe(PROMPT, FRAMES, SIZE, SIZE, num_inference_steps=2, generator=generator, **kwargs).videos


@torch.no_grad()
def text(pipe: TuneAVideoPipeline, prompt: str) -> torch.Tensor:
    tokens = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    return pipe.text_encoder(tokens.input_ids)[0]  # (1, 77, D), no attention mask


@pytest.fixture
def one_step_at_999(pipe):
    """DDIM with "trailing" spacing: one step goes from t=999 to ᾱ[0], where ε weighs heavily."""
    sampler = pipe.scheduler
    pipe.scheduler = DDIMScheduler.from_config(sampler.config, timestep_spacing="trailing")
    batches = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    yield batches
    hook.remove()
    pipe.scheduler = sampler


@torch.no_grad()
def ddim_step_to_alpha_0(pipe: TuneAVideoPipeline, eps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    alphas = pipe.scheduler.alphas_cumprod
    alpha_t, alpha_prev = alphas[999], alphas[0]  # set_alpha_to_one false: the final ᾱ is ᾱ[0]
    x0 = (x - (1 - alpha_t).sqrt() * eps) / alpha_t.sqrt()
    return alpha_prev.sqrt() * x0 + (1 - alpha_prev).sqrt() * eps


@pytest.mark.parametrize("scale", [7.5, 1.0])
def test_one_step_equals_the_manual_guidance_update(pipe, one_step_at_999, scale):
    x = torch.randn(1, 4, FRAMES, 4, 4, generator=torch.Generator().manual_seed(3))
    got = pipe(
        PROMPT,
        FRAMES,
        SIZE,
        SIZE,
        num_inference_steps=1,
        guidance_scale=scale,
        negative_prompt="blurry",
        latents=x,
        output_type="latent",
    ).videos
    with torch.no_grad():
        eps_c = pipe.unet(x, 999, encoder_hidden_states=text(pipe, PROMPT)).sample
        eps_u = pipe.unet(x, 999, encoder_hidden_states=text(pipe, "blurry")).sample
    if scale > 1:
        assert one_step_at_999[0] == 2  # [uncond, cond] in one batch
        expected = ddim_step_to_alpha_0(pipe, eps_u + scale * (eps_c - eps_u), x)
        unguided = ddim_step_to_alpha_0(pipe, eps_c, x)
        assert (got - unguided).abs().max() > 0.1  # guidance changed the result
    else:
        assert one_step_at_999[0] == 1  # no guidance: the prompt alone
        expected = ddim_step_to_alpha_0(pipe, eps_c, x)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-5), (got - expected).abs().max()


def test_same_seed_gives_identical_frames_another_seed_other_frames(pipe):
    first, again, other = sample(pipe, 0), sample(pipe, 0), sample(pipe, 1)
    assert first.shape == (1, 3, FRAMES, SIZE, SIZE) and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 1
    assert np.array_equal(first, again)
    assert np.abs(first - other).max() > 1e-2


def test_encode_video_runs_the_vae_per_frame(pipe):
    pixels = torch.rand(FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)) * 2 - 1  # (F, 3, H, W)
    latents = pipe.encode_video(pixels)
    assert latents.shape == (1, 4, FRAMES, 4, 4)
    with torch.no_grad():
        for frame in range(FRAMES):
            mean = pipe.vae.encode(pixels[frame : frame + 1]).latent_dist.mean[0]  # (4, h, w)
            expected = mean * pipe.vae.config.scaling_factor
            assert torch.allclose(latents[0, :, frame], expected, atol=1e-5)
    batch = pipe.encode_video(torch.stack([pixels, pixels.flip(0)]).permute(0, 2, 1, 3, 4))  # (2, 3, F, H, W)
    assert torch.allclose(batch[0], latents[0], atol=1e-5) and torch.allclose(batch[1], latents[0].flip(1), atol=1e-5)
    drawn = [pipe.encode_video(pixels, torch.Generator().manual_seed(5), sample_posterior=True) for _ in range(2)]
    assert torch.equal(drawn[0], drawn[1]) and not torch.allclose(drawn[0], latents)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": 30}, "multiple of 8"),
        ({"prompt": []}, "non-empty list"),
        ({"num_inference_steps": 0}, "from 1 to 1000"),
        ({"latents": torch.zeros(1, 4, FRAMES + 1, 4, 4)}, "Pass num_frames, height and width"),
        ({"guidance_scale": -2.0}, "must be a number >= 0"),
        ({"negative_prompt": ["a", "b"]}, "one per prompt"),
        ({"output_type": "pil"}, "np, pt, latent"),
    ],
)
def test_bad_inputs_say_the_fix(pipe, change, message):
    call = {"prompt": PROMPT, "num_frames": FRAMES, "height": SIZE, "width": SIZE, **change}
    with pytest.raises(VidSynthError, match=message):
        pipe(**call)


def test_prompts_share_one_inversion_and_do_not_depend_on_each_other(pipe, tmp_path, monkeypatch):
    pixels = torch.rand(FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(6)) * 2 - 1
    latents = pipe.encode_video(pixels)
    inversions = []
    real_invert = TuneAVideoPipeline.invert

    def counting_invert(self, *args, **kwargs):
        inversions.append(args)
        return real_invert(self, *args, **kwargs)

    monkeypatch.setattr(TuneAVideoPipeline, "invert", counting_invert)
    options = {"num_inference_steps": 2, "inversion_steps": 2, "seed": 0}
    cache = tmp_path / "inversion.pt"
    both = render_edits(pipe, latents, InferenceConfig(prompts=["a red car", "a blue car"], **options), cache)
    assert len(inversions) == 1 and cache.is_file()
    assert [(video.shape, video.dtype) for video in both] == [((FRAMES, SIZE, SIZE, 3), np.uint8)] * 2
    assert np.abs(both[0].astype(int) - both[1]).max() > 0
    alone = render_edits(pipe, latents, InferenceConfig(prompts=["a blue car"], **options), cache)
    assert len(inversions) == 1  # read from the cache
    assert np.array_equal(alone[0], both[1])
    uncached = render_edits(pipe, latents, InferenceConfig(prompts=["a blue car"], **options))
    assert np.array_equal(uncached[0], both[1])


def test_save_and_load_round_trip_gives_identical_output(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = TuneAVideoPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.unet) is VideoUNet and type(loaded.scheduler) is DDIMScheduler
    assert np.array_equal(sample(loaded, 0), sample(pipe, 0))


def test_a_folder_saved_by_the_original_tune_a_video_loads(pipe, tmp_path):
    """Its unet config names 3-D blocks, its weights are a .bin, and model_index names its own package."""
    folder = tmp_path / "tav"
    pipe.save_pretrained(folder)
    unet_dir = folder / "unet"
    config = json.loads((unet_dir / "config.json").read_text())
    for key in ("frame_norm", "temporal_out_bias_init"):
        config.pop(key)
    config["_class_name"] = "UNet3DConditionModel"
    config["down_block_types"] = [name.replace("2D", "3D") for name in config["down_block_types"]]
    config["up_block_types"] = [name.replace("2D", "3D") for name in config["up_block_types"]]
    config["mid_block_type"] = "UNetMidBlock3DCrossAttn"
    (unet_dir / "config.json").write_text(json.dumps(config))
    torch.save(pipe.unet.state_dict(), unet_dir / "diffusion_pytorch_model.bin")
    (unet_dir / "diffusion_pytorch_model.safetensors").unlink()
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["tuneavideo", "UNet3DConditionModel"]
    (folder / "model_index.json").write_text(json.dumps(index))

    assert is_tuneavideo_folder(folder)
    loaded = load_pipeline(ModelSource("tuneavideo", str(folder)))
    loaded.set_progress_bar_config(disable=True)
    assert np.array_equal(sample(loaded, 0), sample(pipe, 0))
