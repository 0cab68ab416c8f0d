"""The training objective of one step, on cached clip latents (Tune-A-Video's, unchanged).

One timestep per video shared by all its frames, independent noise for every frame, the DDPM
forward process, and the MSE between the UNet's prediction and the target the scheduler is trained
for (ε or v). All randomness of a step comes from a generator seeded by (seed, step, micro-step,
process): a run resumed from a checkpoint redraws exactly what the uninterrupted run drew, which a
global RNG stream (advanced by validation, data loading, library internals) cannot promise.
"""

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from vidsynth.errors import VidSynthError
from vidsynth.models.unet import VideoUNet
from vidsynth.training.encode import ClipLatents

PREDICTION_TYPES = ("epsilon", "v_prediction")


def step_generator(
    seed: int, step: int, micro_step: int = 0, process: int = 0, stream: int | None = None
) -> torch.Generator:
    """A CPU generator for one micro-step; numpy's SeedSequence mixes the parts into independent streams.

    ``stream``: another independent stream of the same micro-step (e.g. the windows it draws); None, the default,
    is the stream of the noise and timesteps.
    """
    parts = [seed, step, micro_step, process] + ([] if stream is None else [stream])
    entropy = np.random.SeedSequence(parts).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(entropy))


def training_scheduler(model: str) -> DDPMScheduler:
    """The model's noise schedule as a DDPM scheduler (the forward process), if this objective can train it."""
    noise_scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(model, subfolder="scheduler"))
    kind = noise_scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise VidSynthError(
            f"the model's scheduler predicts {kind!r}; tuning supports {', '.join(PREDICTION_TYPES)}. "
            "Use an SD-1.x or SD-2.x model folder"
        )
    return noise_scheduler


def diffusion_loss(
    unet: VideoUNet | torch.nn.Module,
    noise_scheduler: DDPMScheduler,
    latents: ClipLatents,
    text_embeddings: torch.Tensor,
    generator: torch.Generator,
    batch_size: int = 1,
    sample_posterior: bool = True,
) -> torch.Tensor:
    """MSE of the UNet's prediction on a noised copy of the clip; a scalar float32 tensor.

    text_embeddings: (1, 77, D). Draws, in the original's order: the posterior sample, the noise,
    the timesteps — all from ``generator`` on the CPU, then moved to the latents' device.
    """
    x0 = latents.draw(batch_size, generator, sample_posterior)  # (b, 4, F, h, w)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)  # (b, 4, F, h, w): per frame
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
    timesteps = timesteps.to(x0.device)  # (b,): one per video, shared by its frames
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)  # (b, 4, F, h, w)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(x0, noise, timesteps)
    else:
        target = noise
    context = text_embeddings.expand(batch_size, -1, -1)  # (b, 77, D)
    prediction = unet(noisy, timesteps, context).sample  # (b, 4, F, h, w)
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
