"""The diffusion process of the from-scratch models: DDPM noising for training, DDIM for sampling, in pixel space.

Clips are (b, 3, f, h, w) in [-1, 1]. One timestep per clip shared by its frames, independent noise for
every pixel of every frame, and the ε objective. Every draw of a training step comes from the generator
it is given (seeded by seed, step, micro-step and process): a resumed run redraws exactly what the
uninterrupted one drew. An upsampler diffuses the *residual* over the bicubic upsampling of its low-res
clip (SR3's input is unchanged): an untrained one already samples the bicubic clip, and its few CPU
steps go into the detail bicubic misses. Sampling draws its start noise from a generator seeded by the caller and runs
DDIM with eta 0, so a seed gives the same clips again.
"""

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from vidsynth.scratch.config import ScratchConfig
from vidsynth.scratch.model import ScratchUNet, model_input, resize_clips


def noise_scheduler(cfg: ScratchConfig) -> DDPMScheduler:
    """The forward process every stage trains with (saved with the run as ``scheduler/``)."""
    return DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type="epsilon",
        clip_sample=True,  # pixels: x0 estimates are kept in [-1, 1]
    )


def training_loss(
    unet: ScratchUNet | torch.nn.Module,
    scheduler: DDPMScheduler,
    clips: torch.Tensor,
    labels: torch.Tensor | None,
    low_res: torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """MSE between the predicted and the drawn noise of ``clips`` (b, 3, f, h, w), or for an upsampler of their
    residual over ``low_res`` upsampled; a scalar float32 tensor."""
    if low_res is not None:
        clips = clips - resize_clips(low_res, clips.shape[-1])
    noise = torch.randn(clips.shape, generator=generator).to(clips.device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (clips.shape[0],), generator=generator)
    timesteps = timesteps.to(clips.device)
    noisy = scheduler.add_noise(clips, noise, timesteps)
    prediction = unet(model_input(noisy, low_res), timesteps, labels).sample
    return F.mse_loss(prediction.float(), noise.float())


def drop_labels(
    unet: ScratchUNet, labels: torch.Tensor | None, share: float, generator: torch.Generator
) -> torch.Tensor | None:
    """Class labels with the null class in place of a ``share`` of the clips' labels (every frame of a clip)."""
    if labels is None or labels.is_floating_point() or not share:
        return labels
    dropped = (torch.rand(labels.shape[0], generator=generator) < share).to(labels.device)
    return torch.where(dropped[:, None], unet.null_labels(labels), labels)


@torch.no_grad()
def ddim_sample(
    unet: ScratchUNet,
    scheduler_config: dict,
    shape: tuple[int, int, int, int, int],
    labels: torch.Tensor | None,
    low_res: torch.Tensor | None,
    steps: int,
    generator: torch.Generator,
    device: torch.device,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """Clips of ``shape`` (b, 3, f, s, s) in [-1, 1]: DDIM (eta 0) from noise drawn on the CPU with ``generator``.

    ``guidance_scale`` > 1 (class labels only): classifier-free guidance, the prediction pushed away from the
    null class's by that factor.
    """
    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    clips = torch.randn(shape, generator=generator).to(device)
    dtype = next(unet.parameters()).dtype
    guided = labels is not None and guidance_scale > 1
    if low_res is not None:
        low_res = resize_clips(low_res, shape[-1])  # once: model_input keeps a clip of the size already
    if guided:
        labels = torch.cat([labels, unet.null_labels(labels)])
        low_res = None if low_res is None else torch.cat([low_res, low_res])
    for t in scheduler.timesteps:
        inputs = model_input(torch.cat([clips, clips]) if guided else clips, low_res).to(dtype)
        noise = unet(inputs, t, labels).sample
        if guided:
            conditional, unconditional = noise.chunk(2)
            noise = unconditional + guidance_scale * (conditional - unconditional)
        clips = scheduler.step(noise.float(), t, clips).prev_sample
    if low_res is not None:  # an upsampler's clips are residuals over its upsampled input
        clips = clips + low_res[: clips.shape[0]].float()
    return clips.clamp(-1, 1)
