"""A diffusers ``BasicTransformerBlock`` followed by Tune-A-Video's temporal attention.

The block's own forward (self-attention, cross-attention, feed-forward) runs unchanged; the
subclass only appends ``x = x + attn_temp(norm_temp(x))``. Blocks are converted in place, so every
pretrained parameter keeps its name and the two new modules get the original's names
(``attn_temp.*``, ``norm_temp.*``).
"""

from typing import Any

import torch
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from torch import nn

from vidsynth.models.attention import TemporalAttnProcessor


class VideoTransformerBlock(BasicTransformerBlock):
    """``BasicTransformerBlock`` + temporal attention after its feed-forward."""

    norm_temp: nn.LayerNorm
    attn_temp: Attention

    @classmethod
    def inflate(cls, block: BasicTransformerBlock, zero_out_bias: bool = True) -> "VideoTransformerBlock":
        """Turn ``block`` into a video block in place (its parameters are untouched).

        ``attn_temp`` has the heads and head size of the block's self-attention; its output
        projection starts at zero so the inflated model starts as the image model. The original
        keeps PyTorch's default bias init; ``zero_out_bias`` (the default) zeroes it as well,
        which makes the inflation exact.
        """
        self_attn = block.attn1
        block.__class__ = cls
        block.norm_temp = nn.LayerNorm(self_attn.query_dim)
        block.attn_temp = Attention(
            query_dim=self_attn.query_dim,
            heads=self_attn.heads,
            dim_head=self_attn.inner_dim // self_attn.heads,
            bias=self_attn.to_q.bias is not None,
            upcast_attention=self_attn.upcast_attention,
            processor=TemporalAttnProcessor(),
        )
        nn.init.zeros_(block.attn_temp.to_out[0].weight)
        if zero_out_bias:
            nn.init.zeros_(block.attn_temp.to_out[0].bias)
        return block

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        timestep: torch.LongTensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        class_labels: torch.LongTensor | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        hidden_states = super().forward(
            hidden_states,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            timestep=timestep,
            cross_attention_kwargs=cross_attention_kwargs,
            class_labels=class_labels,
            added_cond_kwargs=added_cond_kwargs,
        )  # (b f, h w, c)
        num_frames = (cross_attention_kwargs or {}).get("num_frames")
        if num_frames is None:
            raise ValueError("VideoTransformerBlock needs num_frames in cross_attention_kwargs")
        return hidden_states + self.attn_temp(self.norm_temp(hidden_states), num_frames=num_frames)
