"""The two attention variants of Tune-A-Video, as diffusers attention processors.

Frames are folded into the batch, so every processor sees ``(batch * frames, tokens, channels)``
and receives ``num_frames`` explicitly (through ``cross_attention_kwargs``) instead of guessing it
from shapes. All three processors compute attention with diffusers' ``AttnProcessor2_0``
(``F.scaled_dot_product_attention``); they only choose *which tokens* are attended to.
"""

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from einops import rearrange

from vidsynth.models.windows import SparseCausalCache


def sparse_causal_context(hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Keys/values of sparse-causal attention: frame 0's tokens followed by frame max(i-1, 0)'s.

    ``(b f) n c -> (b f) 2n c``. Projections are per token, so projecting these gathered tokens
    equals gathering projected keys and values, which is what the original computes.
    """
    frames = rearrange(hidden_states, "(b f) n c -> b f n c", f=num_frames)
    previous = torch.arange(num_frames, device=hidden_states.device) - 1
    previous[0] = 0
    first = frames[:, [0] * num_frames]  # (b, f, n, c): frame 0 for every frame
    context = torch.cat([first, frames[:, previous]], dim=2)  # (b, f, 2n, c)
    return rearrange(context, "b f n c -> (b f) n c")


class FramesAttnProcessor(AttnProcessor2_0):
    """Plain SDPA attention that accepts ``num_frames``; used for the per-frame cross-attention.

    Every attention layer gets the same ``cross_attention_kwargs``; diffusers warns about (and
    drops) keyword arguments a processor does not declare, so this one declares it.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int | None = None,
        sparse_causal_cache: SparseCausalCache | None = None,
    ) -> torch.Tensor:
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class SparseCausalAttnProcessor(AttnProcessor2_0):
    """Self-attention (``attn1``) where frame i attends to frames 0 and i-1 (Tune-A-Video).

    Queries come from frame i; keys and values are the 2·h·w tokens of frame 0 and frame
    max(i-1, 0), with the pretrained q/k/v/out weights unchanged. With a ``sparse_causal_cache``
    the frames are one window of a longer clip: frame 0 and the frame before the window come from
    the cache (see ``windows.py``).
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int | None = None,
        sparse_causal_cache: SparseCausalCache | None = None,
    ) -> torch.Tensor:
        if num_frames is None:
            raise ValueError("SparseCausalAttnProcessor needs num_frames in cross_attention_kwargs")
        if encoder_hidden_states is not None:
            raise ValueError("SparseCausalAttnProcessor is for self-attention (attn1) only")
        if sparse_causal_cache is None:
            context = sparse_causal_context(hidden_states, num_frames)  # (b f, 2n, c)
        else:
            frames = rearrange(hidden_states, "(b f) n c -> b f n c", f=num_frames)
            context = rearrange(sparse_causal_cache.context(attn, frames), "b f n c -> (b f) n c")
        return super().__call__(attn, hidden_states, context, attention_mask, temb)


class TemporalAttnProcessor(AttnProcessor2_0):
    """Temporal attention (``attn_temp``): the frames at one spatial position attend to each other.

    All frames see all frames; no positional encoding, no mask, as in Tune-A-Video.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        num_frames: int | None = None,
    ) -> torch.Tensor:
        if num_frames is None:
            raise ValueError("TemporalAttnProcessor needs num_frames in cross_attention_kwargs")
        tokens = hidden_states.shape[1]
        sequences = rearrange(hidden_states, "(b f) d c -> (b d) f c", f=num_frames)
        out = super().__call__(attn, sequences, None, attention_mask, temb)  # (b d, f, c)
        return rearrange(out, "(b d) f c -> (b f) d c", d=tokens)


def video_attn_processors(processor_names: list[str]) -> dict[str, AttnProcessor2_0]:
    """Processor for every attention layer, chosen by its name (``...attn1.processor`` etc.).

    A dict keyed by layer name, so each kind of layer keeps its own processor.
    """
    by_suffix = {
        "attn1.processor": SparseCausalAttnProcessor,
        "attn2.processor": FramesAttnProcessor,
        "attn_temp.processor": TemporalAttnProcessor,
    }
    processors = {}
    for name in processor_names:
        kind = next((cls for suffix, cls in by_suffix.items() if name.endswith(suffix)), None)
        if kind is None:
            raise ValueError(f"no video attention processor for layer {name!r}: not an SD-1.x transformer block")
        processors[name] = kind()
    return processors
