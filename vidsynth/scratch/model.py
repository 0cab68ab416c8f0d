"""The from-scratch video UNet: a small 2-D U-Net inflated to 3-D, conditioned on the timestep and per-frame labels.

It is the project's :class:`~vidsynth.models.unet.VideoUNet` (per-frame convolutions, sparse-causal
self-attention over frames 0 and i-1, temporal attention across all frames after every transformer block,
GroupNorm over the whole clip) built at a small size from diffusers' ``UNet2DConditionModel`` blocks, with
no pretrained weights. Frames are folded into the batch, so the 2-D model's class embedding takes one
label *per frame* natively: ``num_class_embeds=K`` for class ids, ``class_embed_type="projection"`` for
vectors (e.g. 17x2 keypoints); each frame's label is added to its own time embedding. (diffusers'
``UNet3DConditionModel`` accepts ``class_labels`` and ignores them.) A class model has one class more than
the footage, the null class (the last id): trained in place of a clip's labels (``label_dropout``), it
gives sampling the unconditional prediction that classifier-free guidance needs.

A label changes its own frame directly; it reaches the other frames too, through temporal attention,
the sparse-causal self-attention (every frame attends to frame 0 and to the frame before it) and the
clip-wide GroupNorm statistics: tests/test_scratch.py shows both.

Upsamplers (SR3) take the low-resolution clip, upsampled bicubically to their size, concatenated to the
noisy clip: 6 input channels, no labels (the low-resolution clip carries them).
"""

import torch
import torch.nn.functional as F
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
from torch import nn

from vidsynth.errors import VidSynthError
from vidsynth.models.unet import VideoUNet
from vidsynth.scratch.config import StageConfig


class ScratchUNet(VideoUNet):
    """``VideoUNet`` with a learned context token in place of text; inputs and outputs (b, c, f, h, w).

    The transformer blocks VideoUNet inflates are SD's, whose cross-attention needs a context to attend
    to. A model trained from scratch has no text, so one learned token (``null_context``) is that
    context: the blocks keep their structure (self-, cross- and temporal attention) without a text encoder.
    """

    def __init__(self, frame_norm: str = "joint", temporal_out_bias_init: str = "zero", **unet_config):
        super().__init__(frame_norm, temporal_out_bias_init, **unet_config)
        self.null_context = nn.Parameter(torch.zeros(1, 1, self.config.cross_attention_dim))

    @property
    def conditional(self) -> bool:
        return self.class_embedding is not None

    def null_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The null class for every frame of ``labels`` (b, f): the model without its labels."""
        if labels.is_floating_point():
            raise VidSynthError("guidance needs a model trained on class labels; this one takes label vectors")
        return torch.full_like(labels, self.config.num_class_embeds - 1)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | int, labels: torch.Tensor | None = None, **kwargs
    ) -> UNet2DConditionOutput:
        """Predict the noise of ``sample`` (b, c, f, h, w); ``labels``: (b, f) class ids or (b, f, D) vectors."""
        if labels is not None and not self.conditional:
            raise VidSynthError("this model was trained without labels. Sample it without --labels/--label")
        if labels is None and self.conditional:
            raise VidSynthError("this model was trained with labels: give one per frame (--labels or --label)")
        if labels is not None and tuple(labels.shape[:2]) != (sample.shape[0], sample.shape[2]):
            raise ValueError(f"labels {tuple(labels.shape)} do not give one per frame of {tuple(sample.shape)}")
        context = self.null_context.expand(sample.shape[0], -1, -1).to(sample.dtype)
        return super().forward(sample, timestep, context, class_labels=labels, **kwargs)


def build_unet(stage: StageConfig, num_classes: int | None = None, label_dim: int | None = None) -> ScratchUNet:
    """A freshly initialised UNet for ``stage``; a base is conditioned on class ids or on label vectors if given.

    Levels from ``stage.attention_from`` on and the middle block have attention; the levels before it only
    convolutions (at full size attention is the costliest and sees the least context).
    """
    levels, plain = len(stage.block_out_channels), stage.attention_from
    conditioning = {}
    if stage.kind == "base" and num_classes:
        conditioning = {"num_class_embeds": num_classes + 1}  # the last: the null class
    elif stage.kind == "base" and label_dim:
        conditioning = {"class_embed_type": "projection", "projection_class_embeddings_input_dim": label_dim}
    return ScratchUNet(
        sample_size=stage.resolution,
        in_channels=6 if stage.kind == "upsampler" else 3,
        out_channels=3,
        down_block_types=["DownBlock2D"] * plain + ["CrossAttnDownBlock2D"] * (levels - plain),
        up_block_types=["CrossAttnUpBlock2D"] * (levels - plain) + ["UpBlock2D"] * plain,
        block_out_channels=list(stage.block_out_channels),
        layers_per_block=stage.layers,
        attention_head_dim=stage.attention_heads,  # diffusers' name; it is the number of heads
        cross_attention_dim=stage.block_out_channels[0],
        norm_num_groups=stage.norm_num_groups,
        **conditioning,
    )


def resize_clips(clips: torch.Tensor, size: int) -> torch.Tensor:
    """(b, c, f, h, w) -> (b, c, f, size, size): area-averaged when smaller (as a camera would see it), bicubic
    when larger (SR3's conditioning), kept in [-1, 1]."""
    b, c, f, h, w = clips.shape
    if h == size and w == size:
        return clips
    frames = clips.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    if size < h:
        resized = F.interpolate(frames, size=(size, size), mode="area")
    else:
        resized = F.interpolate(frames, size=(size, size), mode="bicubic", align_corners=False)
    return resized.clamp(-1, 1).reshape(b, f, c, size, size).permute(0, 2, 1, 3, 4)


def model_input(noisy: torch.Tensor, low_res: torch.Tensor | None) -> torch.Tensor:
    """A base's input is the noisy clip; an upsampler's, the noisy clip and the upsampled low-res clip (SR3)."""
    if low_res is None:
        return noisy
    return torch.cat([noisy, resize_clips(low_res, noisy.shape[-1])], dim=1)
