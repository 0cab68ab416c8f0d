"""DDIM inversion with diffusers' ``DDIMInverseScheduler``, on the original Tune-A-Video's timesteps.

Editing starts from the clip run *backwards* through deterministic DDIM: walking the DDIM timesteps
in ascending order, each step predicts the noise once (prompt only, no classifier-free guidance) and
moves the latent from the previous timestep to the next one. Sampling the result with the tuned model
reproduces the clip; sampling it with a new prompt edits it while keeping the motion and layout.

For ε-prediction models (SD-1.4/1.5) ``DDIMInverseScheduler.step`` is exactly the original's
``tuneavideo/util.py::next_step`` (tests/test_inversion.py writes that formula out); unlike the
original it also reads ``prediction_type``, so v-prediction models invert correctly.
"""

from collections.abc import Callable, Iterable

import torch
from diffusers import DDIMInverseScheduler
from diffusers.configuration_utils import FrozenDict


def inversion_scheduler(scheduler_config: FrozenDict | dict, num_inference_steps: int) -> DDIMInverseScheduler:
    """An inverse DDIM scheduler with the model's noise schedule and ``num_inference_steps`` ascending timesteps.

    Inversion uses DDIM whatever scheduler a model folder names (SD folders name PNDM). The spacing
    is forced to "leading", the only one the original's diffusers 0.11 had: with SD's
    ``steps_offset`` 1 and 50 steps that gives 1, 21, ..., 981. ``set_alpha_to_one`` comes from the
    model's config (False for SD: the first step starts from ᾱ[0], as the original does).
    """
    scheduler = DDIMInverseScheduler.from_config(scheduler_config, timestep_spacing="leading")
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


@torch.no_grad()
def ddim_invert(
    predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    scheduler: DDIMInverseScheduler,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[torch.Tensor]:
    """Invert ``latents`` (b, c, f, h, w) through ``scheduler``'s ascending timesteps.

    ``predict_noise(x, t)`` is the model's output for the prompt (no guidance), whatever its
    ``prediction_type``. The update runs in float32 whatever the model's dtype, and each new latent
    is cast back to the input's dtype. Returns every latent: the input first, the fully inverted one
    (at t_N) last.
    """
    sample = latents
    trajectory = [latents]
    for timestep in progress(scheduler.timesteps):  # t_1 < t_2 < ... < t_N
        model_output = predict_noise(sample, timestep).float()
        sample = scheduler.step(model_output, int(timestep), sample.float()).prev_sample.to(latents.dtype)
        trajectory.append(sample)
    return trajectory
