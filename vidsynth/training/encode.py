"""The clip and the prompt are encoded once, before the first step.

The original runs the VAE encoder and the text encoder in every step although their inputs never
change; here both run once. What changes from step to step in the original is only the VAE
posterior *sample*, so the posterior's mean and standard deviation are kept and every step draws a
fresh sample from them (or uses the mean, ``latent_sampling: mean``) at the cost of one ``randn``.
With random windows (``span.py``) the whole span is encoded, and each step slices its window out.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from vidsynth.media.video import Clip
from vidsynth.models.frozen_weights import compute_dtype
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines import ModelSource, load_pipeline


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class ClipLatents:
    """The VAE posterior of every frame of the clip, ready to draw training latents from."""

    mean: torch.Tensor  # (1, 4, F, h, w) posterior mean, unscaled
    std: torch.Tensor  # (1, 4, F, h, w) posterior standard deviation, unscaled
    scaling_factor: float  # the VAE's latent scale (0.18215 for SD-1.x)

    def window(self, start: int, length: int) -> "ClipLatents":
        """The posterior of frames ``start`` to ``start + length`` (views, no copy): one step's window."""
        frames = slice(start, start + length)
        return ClipLatents(self.mean[:, :, frames], self.std[:, :, frames], self.scaling_factor)  # (1, 4, W, h, w)

    def draw(self, batch_size: int, generator: torch.Generator | None, sample_posterior: bool) -> torch.Tensor:
        """Training latents (batch_size, 4, F, h, w), already multiplied by the scaling factor.

        ``sample_posterior``: mean + std·ε with ε from ``generator`` (CPU), as the original's
        ``latent_dist.sample()``; otherwise the mean itself, and ``generator`` is not used.
        """
        shape = (batch_size, *self.mean.shape[1:])
        if not sample_posterior:
            return self.mean.expand(shape) * self.scaling_factor
        eps = torch.randn(shape, generator=generator).to(self.mean.device)  # (b, 4, F, h, w)
        return (self.mean + self.std * eps) * self.scaling_factor


@torch.no_grad()
def encode_posterior(vae: AutoencoderKL, frames: Iterable[torch.Tensor]) -> ClipLatents:
    """Encode clip frames, each (1, 3, H, W) in [-1, 1], to the posterior of each frame, one frame at a time.

    One frame's pixels at a time are made (``Clip.pixel_frames``, or ``pixels.split(1)``), go to the
    VAE's device and through the encoder, so memory is one frame's however long the span is (80
    frames or 900); only the moments, 8 x h x w values a frame, grow with it. They are turned into
    mean and std at once, exactly as the VAE does for a whole batch; the posterior is kept in float32
    whatever the VAE's dtype.
    """
    param = next(vae.parameters())
    moments = torch.cat(
        [vae.encode(frame.to(param.device, compute_dtype(vae))).latent_dist.parameters for frame in frames]
    )  # (F, 8, h, w): mean and log-variance
    posterior = DiagonalGaussianDistribution(moments)
    mean = posterior.mean.float().permute(1, 0, 2, 3).unsqueeze(0)  # (1, 4, F, h, w)
    std = posterior.std.float().permute(1, 0, 2, 3).unsqueeze(0)  # (1, 4, F, h, w)
    return ClipLatents(mean.contiguous(), std.contiguous(), float(vae.config.scaling_factor))


@torch.no_grad()
def encode_inputs(
    model: str, unet: VideoUNet, device: torch.device, clip: Clip, prompt: str
) -> tuple[ClipLatents, torch.Tensor]:
    """The clip's posterior and the prompt's embedding (1, 77, D), float32 on ``device``.

    The VAE and the text encoder of ``model`` are loaded (around ``unet``, not loaded twice) and
    freed again: no step runs them, and validation loads them while it runs.
    """
    pipeline = load_pipeline(ModelSource("base", model), device=device, unet=unet)
    clip_latents = encode_posterior(pipeline.vae, clip.pixel_frames())  # posterior mean and std, (1, 4, F, h, w) each
    text_embeddings = pipeline.encode_prompt(prompt, device, 1, False)[0].float()
    return clip_latents, text_embeddings
