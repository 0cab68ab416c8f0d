"""A tiny random ControlNet in the real diffusers layout, made from a UNet the way ControlNets start.

``ControlNetModel.from_unet`` copies the UNet's encoder and adds the conditioning embedding and the
"zero convolutions" that feed its residuals to the UNet. Those start at zero, which would make every
test of the residuals pass whatever the code did with them, so here they get small random weights.
The folder (``config.json`` and ``diffusion_pytorch_model.safetensors``) loads with
``ControlNetModel.from_pretrained`` like ``lllyasviel/control_v11p_sd15_canny``.
"""

from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

# Downsamples maps by 8 like SD's (16, 32, 96, 256), at toy width.
CONDITIONING_CHANNELS = (8, 8, 16, 16)


def tiny_controlnet(unet: UNet2DConditionModel, seed: int = 0) -> ControlNetModel:
    """A ControlNet of ``unet`` (its weights copied), with non-zero "zero convolutions"; the global RNG is kept."""
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS)
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    zero_convs.append(controlnet.controlnet_cond_embedding.conv_out)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in zero_convs:
            for param in conv.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return controlnet.eval()


def build_tiny_controlnet(path: str | Path, unet: UNet2DConditionModel, seed: int = 0) -> Path:
    """Write :func:`tiny_controlnet` of ``unet`` to ``path`` (safetensors) and return it."""
    path = Path(path)
    tiny_controlnet(unet, seed).save_pretrained(path, safe_serialization=True)
    return path
