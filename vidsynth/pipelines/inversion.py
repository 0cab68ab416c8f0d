"""DDIM inversion exactly as Tune-A-Video computes it (its ``tuneavideo/util.py::ddim_inversion``).

Editing starts from the clip run *backwards* through deterministic DDIM: walking the DDIM timesteps
in ascending order, each step predicts the noise once (prompt only, no classifier-free guidance) and
moves the latent from the previous timestep to the next one along the DDIM update. Sampling the
result with the tuned model reproduces the clip; sampling it with a new prompt edits it while keeping
the motion and layout. The arithmetic below is the original's, step for step, so inverted latents
match those of the original code.
"""

from collections.abc import Callable, Iterable

import torch
from diffusers import DDIMScheduler
from diffusers.configuration_utils import FrozenDict


def inversion_scheduler(scheduler_config: FrozenDict | dict, num_inference_steps: int) -> DDIMScheduler:
    """A DDIM scheduler with the model's noise schedule and ``num_inference_steps`` timesteps.

    Inversion always uses DDIM whatever scheduler a model folder names (SD folders name PNDM). The
    spacing is forced to "leading", the only one the original's diffusers 0.11 had: with SD's
    ``steps_offset`` 1 and 50 steps that gives 1, 21, ..., 981.
    """
    scheduler = DDIMScheduler.from_config(scheduler_config, timestep_spacing="leading")
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


def ddim_inversion_step(
    noise_pred: torch.Tensor, timestep: int, sample: torch.Tensor, scheduler: DDIMScheduler
) -> torch.Tensor:
    """Move ``sample`` from the timestep before ``timestep`` up to ``timestep`` (the original's ``next_step``).

    t_cur = t - num_train_timesteps // N; ᾱ_cur = ᾱ[t_cur] (ᾱ[0] when t_cur < 0); ᾱ_next = ᾱ[t];
    x0 = (x - √(1-ᾱ_cur)·ε) / √ᾱ_cur; x_next = √ᾱ_next·x0 + √(1-ᾱ_next)·ε.
    """
    current = int(timestep) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    alphas = scheduler.alphas_cumprod  # (num_train_timesteps,) float32
    alpha_cur = alphas[current] if current >= 0 else alphas[0]
    alpha_next = alphas[int(timestep)]
    original = (sample - (1 - alpha_cur) ** 0.5 * noise_pred) / alpha_cur**0.5
    return alpha_next**0.5 * original + (1 - alpha_next) ** 0.5 * noise_pred


@torch.no_grad()
def ddim_invert(
    predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    scheduler: DDIMScheduler,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[torch.Tensor]:
    """Invert ``latents`` (b, c, f, h, w) through ``scheduler``'s timesteps in ascending order.

    ``predict_noise(x, t)`` is the model's ε prediction for the prompt (no guidance). The update runs
    in float32 whatever the model's dtype, and each new latent is cast back to the input's dtype.
    Returns every latent: the input first, the fully inverted one (at t_N) last.
    """
    sample = latents
    trajectory = [latents]
    for timestep in progress(scheduler.timesteps.flip(0)):  # t_1 < t_2 < ... < t_N
        noise_pred = predict_noise(sample, timestep).float()
        sample = ddim_inversion_step(noise_pred, timestep, sample.float(), scheduler).to(latents.dtype)
        trajectory.append(sample)
    return trajectory
