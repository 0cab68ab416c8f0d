"""Validation while tuning: the validation prompts rendered as ``inference.py`` renders them.

The edits come from :func:`vidsynth.editing.render_edits` (shared with ``inference.py``): the clip
DDIM-inverted with the model as tuned so far (or noise, without ``use_inv_latent``), then sampled
per prompt. The clip's posterior mean is inverted, so successive validations differ only by the
tuning between them. Written to ``samples/sample-<step>/``: a captioned GIF grid with the source
next to every edit, and one GIF per prompt.

The VAE and the text encoder are needed by no training step, so they are loaded around the UNet
only while the clip is encoded and while validation runs (about 0.8 GB less during the steps for
SD-1.x; reloading takes seconds, validation minutes).
"""

import re
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler
from transformers import CLIPTextModel, CLIPTokenizer

from vidsynth.config.train import ValidationDataConfig
from vidsynth.editing import render_edits, source_video
from vidsynth.media import write_gif_grid
from vidsynth.models.frozen_weights import store_frozen_weights
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.training.encode import ClipLatents
from vidsynth.training.precision import FROZEN_DTYPES
from vidsynth.video import Clip


def load_pipeline(model: str, unet: VideoUNet, device: torch.device, frozen_dtype: str = "fp32") -> TuneAVideoPipeline:
    """The editing pipeline around the UNet being tuned: VAE, text encoder, tokenizer and DDIM from ``model``.

    With ``frozen_dtype: bf16`` the VAE's and text encoder's layers are stored in bf16 too and
    compute like the UNet's frozen layers (see ``frozen_weights.py``).
    """
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae").requires_grad_(False)
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").requires_grad_(False)
    if frozen_dtype != "fp32":
        store_frozen_weights(vae, FROZEN_DTYPES[frozen_dtype])
        store_frozen_weights(text_encoder, FROZEN_DTYPES[frozen_dtype])
    pipeline = TuneAVideoPipeline(
        vae=vae.to(device),
        text_encoder=text_encoder.to(device),
        tokenizer=CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
        unet=unet,
        scheduler=DDIMScheduler.from_pretrained(model, subfolder="scheduler"),
    )
    pipeline.set_progress_bar_config(leave=False)  # validation's bars vanish under the tuning bar
    return pipeline


def _file_name(index: int, prompt: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60] or "prompt"
    return f"{index:02d}-{slug}.gif"


def render_validation(
    pipeline: TuneAVideoPipeline,
    clip: Clip,
    clip_latents: ClipLatents,
    cfg: ValidationDataConfig,
    folder: Path,
    seed: int,
) -> Path:
    """Render ``cfg.prompts`` for ``clip`` into ``folder``; returns the grid GIF's path."""
    latents = clip_latents.mean * clip_latents.scaling_factor  # (1, 4, F, h, w)
    videos = render_edits(
        pipeline,
        latents,
        cfg.prompts,
        num_inference_steps=cfg.num_inference_steps,
        guidance_scale=cfg.guidance_scale,
        negative_prompt=cfg.negative_prompt,
        inversion_steps=cfg.num_inv_steps if cfg.use_inv_latent else None,
        seed=seed,
    )  # each (3, F, H, W) in [0, 1]
    for index, (prompt, video) in enumerate(zip(cfg.prompts, videos, strict=True)):
        write_gif_grid(folder / _file_name(index, prompt), [(prompt, video)], fps=clip.fps)
    columns = [("source", source_video(clip.pixels)), *zip(cfg.prompts, videos, strict=True)]
    return write_gif_grid(folder / "grid.gif", columns, fps=clip.fps)
