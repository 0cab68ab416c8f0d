"""GroupNorm that normalises over all frames of a clip jointly, as the original does.

Tune-A-Video's ResNet blocks see 5-D ``(b, c, f, h, w)`` tensors, so their GroupNorm statistics
span channels-in-group × frames × h × w. With frames folded into the batch a plain GroupNorm would
use per-frame statistics instead: a different model. This drop-in subclass keeps the parameter
names (``weight``, ``bias``) and values, and gets the number of frames set on it before every forward.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class FrameGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` over ``(b f) c h w`` with joint (whole clip) or per-frame statistics."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, joint: bool = True):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)
        self.joint = joint
        self.num_frames = 1  # set by VideoUNet.forward before every call

    @classmethod
    def convert(cls, norm: nn.GroupNorm, joint: bool) -> "FrameGroupNorm":
        """Turn ``norm`` into a frame-aware GroupNorm in place, keeping its (pretrained) parameters."""
        norm.__class__ = cls
        norm.joint = joint
        norm.num_frames = 1
        return norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.joint or self.num_frames == 1:
            return super().forward(x)
        clip = rearrange(x, "(b f) c h w -> b c f h w", f=self.num_frames)
        clip = F.group_norm(clip, self.num_groups, self.weight, self.bias, self.eps)
        return rearrange(clip, "b c f h w -> (b f) c h w")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, joint={self.joint}"
