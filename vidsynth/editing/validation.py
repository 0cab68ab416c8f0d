"""Validation while tuning: the validation prompts rendered exactly as ``inference.py`` renders them.

The validation settings become an :class:`~vidsynth.config.inference.InferenceConfig` for the tuning
clip, resolved by :func:`vidsynth.editing.request.resolve_request` and rendered by
:func:`vidsynth.editing.render.edit_tuneavideo` around the UNet being tuned: the clip DDIM-inverted with the
model as tuned so far (or noise, without ``use_inv_latent``), then sampled per prompt. The clip's
posterior mean is inverted, so successive validations differ only by the tuning between them, and
nothing is cached (the model changes every step). Written to ``samples/sample-<step>/``: the captioned
GIF grid with the source next to every edit, and the config that rendered it.

The VAE and the text encoder are needed by no training step, so they are loaded around the UNet
only while the clip is encoded and while validation runs (about 0.8 GB less during the steps for
SD-1.x; reloading takes seconds, validation minutes).
"""

import dataclasses
from pathlib import Path

import torch

from vidsynth.config.inference import InferenceConfig
from vidsynth.config.train import ValidationDataConfig
from vidsynth.dtypes import torch_dtype
from vidsynth.editing.outputs import write_results
from vidsynth.editing.render import edit_tuneavideo
from vidsynth.editing.request import resolve_request
from vidsynth.media.video import Clip
from vidsynth.models.frozen_weights import store_frozen_weights
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines import ModelSource, TuneAVideoPipeline, load_pipeline
from vidsynth.training.encode import ClipLatents


def validation_pipeline(
    model: str, unet: VideoUNet, device: torch.device, frozen_dtype: str = "fp32"
) -> TuneAVideoPipeline:
    """The editing pipeline around the UNet being tuned: VAE, text encoder, tokenizer and DDIM from ``model``.

    With ``frozen_dtype: bf16`` the VAE's and text encoder's layers are stored in bf16 too and
    compute like the UNet's frozen layers (see ``frozen_weights.py``).
    """
    pipeline = load_pipeline(ModelSource("base", model), device=device, unet=unet)
    pipeline.vae.requires_grad_(False)
    pipeline.text_encoder.requires_grad_(False)
    if frozen_dtype != "fp32":
        store_frozen_weights(pipeline.vae, torch_dtype(frozen_dtype))
        store_frozen_weights(pipeline.text_encoder, torch_dtype(frozen_dtype))
    return pipeline


def render_validation(
    pipeline: TuneAVideoPipeline,
    model: str,
    clip: Clip,
    clip_latents: ClipLatents,
    cfg: ValidationDataConfig,
    folder: Path,
    seed: int,
) -> Path:
    """Render ``cfg.prompts`` for ``clip`` into ``folder`` (new); returns the grid GIF's path."""
    config = InferenceConfig(
        base=model,
        video=clip.path,
        num_frames=len(clip.frame_indices),
        width=clip.width,
        height=clip.height,
        start_frame=clip.frame_indices[0],
        stride=clip.stride,
        prompts=list(cfg.prompts),
        negative_prompt=cfg.negative_prompt,
        num_inference_steps=cfg.num_inference_steps,
        guidance_scale=cfg.guidance_scale,
        seed=seed,
        inversion=cfg.use_inv_latent,
        inversion_steps=cfg.num_inv_steps,
        device=str(pipeline.device),
        out=str(folder),
        formats=["gif"],
    )
    request = dataclasses.replace(resolve_request(config), inversion_cache=None)
    latents = clip_latents.mean * clip_latents.scaling_factor  # (1, 4, F, h, w)
    videos = edit_tuneavideo(request, clip, pipe=pipeline, video_latents=latents)  # each (3, F, H, W) in [0, 1]
    write_results(request, clip, {"tuneavideo": (f"{model} (tuning)", videos)})
    return folder / "grid.gif"
