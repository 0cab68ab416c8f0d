"""Turning the inflated UNet into the model that tunes: what trains, in which dtypes, how it saves memory.

Two independent levers set the dtypes: ``mixed_precision`` (autocast by accelerate) the dtype of the
arithmetic, ``frozen_dtype`` the dtype the *frozen* weights are stored in (see
``vidsynth/models/frozen_weights.py``). Trained parameters, their gradients and Adam's moments always
stay float32 so that small updates are not rounded away. :func:`prepare_unet` is used by ``train.py``,
the benchmark and the tests alike, so that what they measure and check is exactly the trainer's set-up.
:func:`count_trainable` checks ``trainable_modules`` before any weight loads.
"""

from collections.abc import Sequence

import torch
from diffusers import UNet2DConditionModel

from vidsynth.config.train import TrainConfig
from vidsynth.dtypes import torch_dtype
from vidsynth.errors import VidSynthError
from vidsynth.models.frozen_weights import store_frozen_weights
from vidsynth.models.trainable import select_trainable, trainable_parameter_names
from vidsynth.models.unet import VideoUNet


def _unet_config(model: str) -> dict:
    """The base model's UNet config (a local folder, or a hub id: fetched, or found in the hub's cache).

    Frame sizes need no check against the model: any multiple of 8 (the VAE's downsampling, checked
    with the clip) works, because diffusers' UNet upsamples to the skip connections' sizes where its
    own downsampling meets an odd latent size (432 px: latents 54 -> 27 -> 14 -> 7 and back).
    """
    try:
        return dict(UNet2DConditionModel.load_config(model, subfolder="unet"))
    except (OSError, ValueError) as err:
        raise VidSynthError(
            f"cannot read the unet config of pretrained_model_path {model!r} ({str(err).splitlines()[0]}). "
            "Download the model (download_models.sh) or point pretrained_model_path at a local SD-1.x folder"
        ) from err


def count_trainable(cfg: TrainConfig) -> int:
    """Build the video UNet without weights and resolve ``trainable_modules``; returns the parameter count."""
    with torch.device("meta"):
        unet = VideoUNet.from_config(
            _unet_config(cfg.pretrained_model_path),
            frame_norm=cfg.frame_norm,
            temporal_out_bias_init=cfg.temporal_out_bias_init,
        )
    names = set(trainable_parameter_names(unet, cfg.trainable_modules))
    return sum(param.numel() for name, param in unet.named_parameters() if name in names)


def prepare_unet(
    unet: VideoUNet, trainable_modules: Sequence[str], frozen_dtype: str = "fp32", gradient_checkpointing: bool = True
) -> list[torch.nn.Parameter]:
    """Select the tuned modules, store the frozen layers in ``frozen_dtype``, enable checkpointing.

    Returns the tuned parameters (float32). diffusers' checkpointing is non-reentrant, so every
    tuned parameter still gets a gradient (the original's reentrant checkpointing left the down
    blocks' parameters without one).
    """
    select_trainable(unet, trainable_modules)
    if frozen_dtype != "fp32":
        store_frozen_weights(unet, torch_dtype(frozen_dtype))
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    return [param for param in unet.parameters() if param.requires_grad]
