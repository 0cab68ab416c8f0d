"""ControlNet conditioning for the video UNet: which ControlNet(s), their per-frame maps and this step's scales.

A ControlNet is an image model: it sees one frame at a time, and its residuals are added to the
UNet's down and mid blocks of the same frame. So :class:`VideoControl` travels with the latents into
:meth:`vidsynth.models.unet.VideoUNet.forward`, which folds the frames of the latents *and* of the
maps into the batch in the one place that folds them, and calls :meth:`VideoControl.residuals` on the
folded tensors. Windows over a long clip cut the maps with the latents (:meth:`VideoControl.window`).
"""

from dataclasses import dataclass

import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth.models.frozen_weights import compute_dtype


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class VideoControl:
    """``controlnet`` with one map video per ControlNet, ``frames[i]``: (1 or b, 3, F, H, W) in [0, 1].

    ``scales[i]``: ControlNet i's conditioning scale at this step (already 0 outside its
    ``control_guidance_start``/``end``).
    """

    controlnet: ControlNetModel | MultiControlNetModel
    frames: tuple[torch.Tensor, ...]
    scales: tuple[float, ...]

    def window(self, start: int, stop: int) -> "VideoControl":
        """The maps of frames ``start:stop`` (the window the latents are cut to)."""
        return VideoControl(self.controlnet, tuple(f[:, :, start:stop] for f in self.frames), self.scales)

    def residuals(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor, images: list
    ) -> dict:
        """The UNet's additional residuals for folded inputs (b f, ...) and folded maps [(b f, 3, H, W)].

        The ControlNet computes in its own dtype; its residuals come back in the sample's. Several
        ControlNets are summed by diffusers' ``MultiControlNetModel``.
        """
        dtype = compute_dtype(self.controlnet)
        images = [image.to(sample.device, dtype) for image in images]
        multi = isinstance(self.controlnet, MultiControlNetModel)
        down, mid = self.controlnet(
            sample.to(dtype),
            timestep,
            encoder_hidden_states=encoder_hidden_states.to(dtype),
            controlnet_cond=images if multi else images[0],
            conditioning_scale=list(self.scales) if multi else self.scales[0],
            return_dict=False,
        )
        return {
            "down_block_additional_residuals": tuple(r.to(sample.dtype) for r in down),
            "mid_block_additional_residual": mid.to(sample.dtype),
        }
