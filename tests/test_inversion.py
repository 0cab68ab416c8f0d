"""DDIM inversion: the original Tune-A-Video's formula for ε-models, a true inverse for v-prediction models."""

import torch
from diffusers import DDIMScheduler, PNDMScheduler

from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.pipelines.inversion import ddim_invert, inversion_scheduler
from vidsynth.testing.tiny_sd import SD14_SCHEDULER

PROMPT = "a man is skiing"


def sd14_alphas_cumprod() -> torch.Tensor:
    """ᾱ of SD-1.4's "scaled_linear" schedule, computed here rather than read from the scheduler."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


@torch.no_grad()
def written_out_inversion(pipe: TuneAVideoPipeline, latents: torch.Tensor, prompt: str, steps: int) -> list:
    """The issue's formula: ascending t_1 < ... < t_N, ε without guidance, x0 then x at t."""
    tokens = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    text = pipe.text_encoder(tokens.input_ids)[0]  # (1, 77, D)
    alphas = sd14_alphas_cumprod()
    stride = 1000 // steps
    timesteps = [i * stride + 1 for i in range(steps)]  # "leading" spacing, steps_offset 1, ascending
    x, out = latents, [latents]
    for t in timesteps:
        eps = pipe.unet(x, t, encoder_hidden_states=text).sample.double()
        t_cur = t - stride
        alpha_cur = alphas[t_cur] if t_cur >= 0 else alphas[0]
        alpha_next = alphas[t]
        x0 = (x.double() - (1 - alpha_cur).sqrt() * eps) / alpha_cur.sqrt()
        x = (alpha_next.sqrt() * x0 + (1 - alpha_next).sqrt() * eps).float()
        out.append(x)
    return out


def test_inversion_equals_the_written_out_formula(pipe):
    latents = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    got = pipe.invert(latents, prompt=PROMPT, num_inference_steps=4, return_all=True)
    expected = written_out_inversion(pipe, latents, PROMPT, 4)
    assert len(got) == len(expected) == 5
    for step, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert torch.allclose(g, e, atol=1e-5, rtol=0), f"step {step}: max diff {(g - e).abs().max()}"
    assert torch.equal(pipe.invert(latents, prompt=PROMPT, num_inference_steps=4), got[-1])
    assert (got[-1] - latents).abs().mean() > 0.1  # it moved: the comparison above is not between near-equals


def test_timesteps_are_the_originals_whatever_the_scheduler(pipe):
    """50 steps visit 1, 21, ..., 981; an SD folder's PNDM config still inverts with DDIM."""
    ddim = inversion_scheduler(pipe.scheduler.config, 50)
    assert ddim.timesteps.tolist() == list(range(1, 1000, 20))
    pndm = PNDMScheduler.from_config(pipe.scheduler.config, skip_prk_steps=True)
    assert inversion_scheduler(pndm.config, 50).timesteps.tolist() == ddim.timesteps.tolist()

    latents = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    with_ddim = pipe.invert(latents, num_inference_steps=3)
    sampler = pipe.scheduler
    pipe.scheduler = pndm
    try:
        with_pndm = pipe.invert(latents, num_inference_steps=3)
    finally:
        pipe.scheduler = sampler
    assert torch.equal(with_ddim, with_pndm)


def _smooth_model(x: torch.Tensor, t) -> torch.Tensor:
    """A fixed, smooth stand-in for a UNet: a channel mix plus a squashed term, the same at every t."""
    mix = torch.randn(4, 4, generator=torch.Generator().manual_seed(1)) * 0.3
    return 0.5 * torch.einsum("bcfhw,dc->bdfhw", x, mix) + 0.1 * torch.tanh(x)


def _invert_then_sample(prediction_type: str, inverted_as: str, steps: int = 50) -> float:
    """Mean error of DDIM sampling (read as ``prediction_type``) from the inverted latents (read as ``inverted_as``)."""
    latents = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    inverse = inversion_scheduler({**SD14_SCHEDULER, "prediction_type": inverted_as}, steps)
    sample = ddim_invert(_smooth_model, latents, inverse)[-1]
    sampler = DDIMScheduler.from_config({**SD14_SCHEDULER, "prediction_type": prediction_type})
    sampler.set_timesteps(steps)
    for t in sampler.timesteps:
        sample = sampler.step(_smooth_model(sample, t), t, sample).prev_sample
    return (sample - latents).abs().mean().item()


def test_v_prediction_models_invert_to_latents_that_sample_back_to_the_clip():
    """Inversion reads the model's prediction_type: v-prediction output read as ε would not round-trip."""
    right = _invert_then_sample("v_prediction", inverted_as="v_prediction")
    wrong = _invert_then_sample("v_prediction", inverted_as="epsilon")
    assert right < 0.1, right  # DDIM's discretisation error only, at 50 steps
    assert wrong > 5 * right, (right, wrong)
    assert _invert_then_sample("epsilon", inverted_as="epsilon") < 0.1  # and ε-models as before


def test_the_pipeline_inverts_with_its_model_s_prediction_type(pipe):
    config = {**pipe.scheduler.config, "prediction_type": "v_prediction"}
    assert inversion_scheduler(config, 10).config.prediction_type == "v_prediction"
    latents = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    as_eps = pipe.invert(latents, num_inference_steps=3)
    sampler = pipe.scheduler
    pipe.scheduler = DDIMScheduler.from_config(config)
    try:
        as_v = pipe.invert(latents, num_inference_steps=3)
    finally:
        pipe.scheduler = sampler
    assert (as_v - as_eps).abs().mean() > 1e-3
