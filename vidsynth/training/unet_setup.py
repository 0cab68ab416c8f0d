"""Turning the inflated UNet into the model that tunes: what trains, in which dtypes, how it saves memory.

Two independent levers set the dtypes: ``mixed_precision`` (autocast by accelerate) the dtype of the
arithmetic, ``frozen_dtype`` the dtype the *frozen* weights are stored in (see
``vidsynth/models/frozen_weights.py``). Trained parameters, their gradients and Adam's moments always
stay float32 so that small updates are not rounded away. :func:`prepare_unet` is used by ``train.py``,
the benchmark and the tests alike, so that what they measure and check is exactly the trainer's set-up.
:func:`count_trainable` checks ``trainable_modules`` (and the LoRA targets) before any weight loads. With
``lora_rank`` set the pretrained projections get LoRA adapters (``vidsynth/models/lora.py``) and only
the adapters and the temporal layers train.
"""

from collections.abc import Sequence

import torch
from diffusers import UNet2DConditionModel
from diffusers.training_utils import cast_training_params

from vidsynth.config.train import TrainConfig
from vidsynth.dtypes import torch_dtype
from vidsynth.errors import VidSynthError
from vidsynth.models.frozen_weights import store_frozen_weights
from vidsynth.models.lora import (
    LoraSpec,
    adapter_parameter_count,
    add_lora,
    is_temporal,
    lora_candidates,
    pretrained_targets,
    seed_temporal_layers,
)
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


def lora_spec(cfg: TrainConfig, unet: VideoUNet, seed: int | None = None) -> LoraSpec | None:
    """The LoRA set-up the config asks for (None: full tuning); ``seed`` seeds the temporal layers' start."""
    if cfg.lora_rank is None:
        return None
    targets = cfg.lora_target_modules
    if targets is None:
        targets = pretrained_targets(unet, cfg.trainable_modules)
        if not targets and not cfg.lora_temporal:
            raise VidSynthError(
                f"lora_rank is set but no entry of trainable_modules {list(cfg.trainable_modules)} names a pretrained "
                f"layer for adapters. Set lora_target_modules, e.g. to {', '.join(lora_candidates(unet)[:4])}"
            )
    return LoraSpec(
        rank=cfg.lora_rank,
        alpha=float(cfg.lora_alpha if cfg.lora_alpha is not None else cfg.lora_rank),
        targets=tuple(targets),
        dropout=cfg.lora_dropout,
        temporal=cfg.lora_temporal,
        init_seed=seed if cfg.lora_temporal else None,
    )


def fully_tuned_names(unet: VideoUNet, trainable_modules: Sequence[str], lora: LoraSpec | None) -> list[str]:
    """Parameters trained in full: the selected modules, or with LoRA their temporal ones (none with lora_temporal)."""
    names = trainable_parameter_names(unet, trainable_modules)
    if lora is None:
        return names
    return [] if lora.temporal else [name for name in names if is_temporal(name)]


def count_trainable(cfg: TrainConfig) -> int:
    """Build the video UNet without weights, resolve ``trainable_modules`` and the LoRA targets; returns the count of
    trained parameters (adapters included)."""
    with torch.device("meta"):
        unet = VideoUNet.from_config(
            _unet_config(cfg.pretrained_model_path),
            frame_norm=cfg.frame_norm,
            temporal_out_bias_init=cfg.temporal_out_bias_init,
        )
    lora = lora_spec(cfg, unet)
    names = set(fully_tuned_names(unet, cfg.trainable_modules, lora))
    full = sum(param.numel() for name, param in unet.named_parameters() if name in names)
    return full + (adapter_parameter_count(unet, lora) if lora is not None else 0)


def _select_lora(unet: VideoUNet, trainable_modules: Sequence[str], lora: LoraSpec) -> None:
    """Freeze everything, add the adapters (trained), and unfreeze the temporal layers unless they get adapters."""
    if lora.temporal:
        seed_temporal_layers(unet, lora.init_seed)
    full = set(fully_tuned_names(unet, trainable_modules, lora))
    unet.requires_grad_(False)
    add_lora(unet, lora)  # peft marks only the adapters as trainable
    for name, param in unet.named_parameters():
        if name in full:
            param.requires_grad_(True)


def prepare_unet(
    unet: VideoUNet,
    trainable_modules: Sequence[str],
    frozen_dtype: str = "fp32",
    gradient_checkpointing: bool = True,
    lora: LoraSpec | None = None,
) -> list[torch.nn.Parameter]:
    """Select the tuned modules (or add LoRA adapters), store the frozen layers in ``frozen_dtype``, enable
    checkpointing.

    Returns the tuned parameters (float32: ``cast_training_params`` keeps adapters so under bf16 frozen
    weights and 8-bit Adam). diffusers' checkpointing is non-reentrant, so every tuned parameter still
    gets a gradient (the original's reentrant checkpointing left the down blocks' parameters without one).
    """
    if lora is None:
        select_trainable(unet, trainable_modules)
    else:
        _select_lora(unet, trainable_modules, lora)
    if frozen_dtype != "fp32":
        store_frozen_weights(unet, torch_dtype(frozen_dtype))
    if lora is not None:
        cast_training_params(unet, dtype=torch.float32)
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    return [param for param in unet.parameters() if param.requires_grad]
