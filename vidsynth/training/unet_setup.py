"""Turning the inflated UNet into the model that tunes: what trains, in which dtypes, how it saves memory.

Two independent levers set the dtypes: ``mixed_precision`` (autocast by accelerate) the dtype of the
arithmetic, ``frozen_dtype`` the dtype the *frozen* weights are stored in (see
``vidsynth/models/frozen_weights.py``). Trained parameters, their gradients and Adam's moments always
stay float32 so that small updates are not rounded away. :func:`prepare_unet` is used by ``train.py``,
the benchmark and the tests alike, so that what they measure and check is exactly the trainer's set-up.
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


def resolve_mixed_precision(requested: str, device_type: str) -> str:
    """The mixed precision to run with on ``device_type``.

    fp16 autocast needs a GPU (accelerate refuses it on the CPU, and CPU fp16 kernels are slow),
    so on the CPU fp16 runs as bf16, the CPU's half-precision format with fp32's range. The caller
    tells the user when the result differs from the request.
    """
    if requested == "fp16" and device_type == "cpu":
        return "bf16"
    return requested
