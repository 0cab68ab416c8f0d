"""Validation while tuning: the validation prompts rendered exactly as ``inference.py`` renders them.

The validation settings become an :class:`~vidsynth.config.inference.InferenceConfig` for the tuning
clip, resolved by :func:`vidsynth.editing.request.resolve_request` and rendered by
:func:`vidsynth.editing.render.edit_tuneavideo` around the UNet being tuned: the clip DDIM-inverted with the
model as tuned so far (or noise, without ``use_inv_latent``), then sampled per prompt. The clip's
posterior mean is inverted, so successive validations differ only by the tuning between them, and
nothing is cached (the model changes every step). Written to ``samples/sample-<step>/``: the captioned
GIF grid with the source next to every edit, and the config that rendered it. Each validation is a
stage of its own: a line says what it renders (prompts, frames, size, steps) and its progress bars
read "Validation: ...", so that minutes of sampling are never mistaken for tuning.

The VAE and the text encoder are needed by no training step, so they are loaded around the UNet
only while the clip is encoded and while validation runs (about 0.8 GB less during the steps for
SD-1.x; reloading takes seconds, validation minutes).
"""

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from vidsynth import events
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
from vidsynth.run_folder import RunFolder
from vidsynth.training.encode import ClipLatents

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class Validation:
    """What every validation of a tuning run renders: its prompts on the clip's first window, with the run's seed."""

    model: str  # the base model (VAE, text encoder, tokenizer and scheduler come from it)
    clip: Clip  # the span's first window: the frames a fixed run tunes on, so validations stay comparable
    clip_latents: ClipLatents  # their posterior
    cfg: ValidationDataConfig
    run: RunFolder
    seed: int
    frozen_dtype: str = "fp32"

    def describe(self) -> str:
        """What one validation renders: prompts, frames, size, DDIM inversion and sampling steps, guidance."""
        cfg, clip = self.cfg, self.clip
        steps = f"{cfg.num_inv_steps} DDIM inversion + " if cfg.use_inv_latent else ""
        count = len(cfg.prompts)
        return (
            f"{count} prompt{'s' * (count != 1)}, {len(clip.frame_indices)} frames at {clip.width}x{clip.height}, "
            f"{steps}{cfg.num_inference_steps} sampling steps each, guidance {cfg.guidance_scale:g}"
        )

    def render(self, unet: VideoUNet, device: torch.device, step: int) -> Path:
        """Render the prompts with ``unet`` as tuned after ``step`` into ``samples/sample-<step>/``; the grid's path.
        A stage of its own in the event stream, then a ``sample`` event with the grid."""
        folder = self.run.sample(step)
        logger.info("Validation after step %d: %s -> %s", step, self.describe(), folder)
        with events.stage("validation", tuning_step=step):
            pipeline = validation_pipeline(self.model, unet, device, self.frozen_dtype)
            pipeline.set_progress_bar_config(leave=False, desc="Validation")  # "Validation: DDIM inversion", ...
            grid = render_validation(pipeline, self.model, self.clip, self.clip_latents, self.cfg, folder, self.seed)
        events.emit("sample", path=str(grid), step=step)
        return grid
