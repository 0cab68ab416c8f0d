"""Turning the inflated UNet into the model that tunes: what trains, in which dtype, how it saves memory.

One function, used by ``train.py``, the benchmark and the tests alike, so that what they measure and
check is exactly the trainer's set-up.
"""

from collections.abc import Sequence

import torch

from vidsynth.dtypes import torch_dtype
from vidsynth.models.frozen_weights import store_frozen_weights
from vidsynth.models.trainable import select_trainable
from vidsynth.models.unet import VideoUNet


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
