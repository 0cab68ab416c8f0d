"""Cross-attention maps of chosen prompt tokens, recorded while the video UNet runs (FateZero, Video-P2P).

The maps say where in each frame the UNet looks at a word of the prompt: ``softmax(QKᵀ/√d)`` of the
cross-attention layers (``attn2``), averaged over heads. Only layers at ``max_tokens`` (32x32) latent
positions or fewer are kept, as FateZero does: the finest layers are noisy and the largest to hold.

Recording must not change what the UNet computes: :class:`StoringCrossAttnProcessor` wraps the layer's
own processor, returns its output untouched and computes the probabilities beside it (the query and key
projections once more, in float32). :func:`storing_cross_attention` installs it on the ``attn2`` layers
only and puts every original processor back afterwards; sparse-causal self-attention and temporal
attention keep theirs.

Frames are folded into the batch, ``(b f) n c``; with windows (``vidsynth/models/windows.py``) a call sees
the frames ``frame_offset .. frame_offset + f`` of the clip, and the store adds its maps there.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from einops import rearrange

from vidsynth.models.windows import SparseCausalCache

MAX_TOKENS = 32 * 32


class CrossAttentionStore:
    """Sums of the maps of ``tokens`` per latent resolution (token count n) and per clip frame.

    ``sums[n]``: (F, n, T) summed probabilities of the T tokens; ``counts[n]``: (F,) how many maps were
    added to each frame (layers x steps x windows covering it). ``frame_offset``: the clip frame of the
    first frame of the next UNet call.
    """

    def __init__(self, num_frames: int, tokens: list[int], max_tokens: int = MAX_TOKENS):
        self.num_frames = num_frames
        self.tokens = list(tokens)
        self.max_tokens = max_tokens
        self.frame_offset = 0
        self.sums: dict[int, torch.Tensor] = {}
        self.counts: dict[int, torch.Tensor] = {}

    def add(self, probs: torch.Tensor, num_frames: int) -> None:
        """Add head-averaged probabilities ``(b f, n, L)`` of one layer call (batch averaged)."""
        tokens = probs.shape[1]
        if tokens > self.max_tokens:
            return
        maps = rearrange(probs[..., self.tokens], "(b f) n t -> b f n t", f=num_frames).mean(0).cpu()
        if tokens not in self.sums:
            self.sums[tokens] = torch.zeros(self.num_frames, tokens, len(self.tokens))
            self.counts[tokens] = torch.zeros(self.num_frames)
        frames = slice(self.frame_offset, self.frame_offset + num_frames)
        self.sums[tokens][frames] += maps
        self.counts[tokens][frames] += 1

    def frame_maps(self, height: int, width: int) -> torch.Tensor:
        """(F, h', w') maps of a clip with (height, width) latents: the mean over the T tokens and over every
        recorded layer call, each upsampled (bilinear) to the finest recorded resolution."""
        scales = {tokens: round((height * width / tokens) ** 0.5) for tokens in self.sums}
        size = (height // min(scales.values()), width // min(scales.values()))
        total, count = torch.zeros(self.num_frames, *size), torch.zeros(self.num_frames)
        for tokens, scale in scales.items():
            maps = self.sums[tokens].mean(-1).reshape(self.num_frames, 1, height // scale, width // scale)
            total += F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0]
            count += self.counts[tokens]
        return total / count.clamp_min(1)[:, None, None]


def attention_probs(attn: Attention, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``softmax(QKᵀ·scale)`` of ``attn`` averaged over heads, (batch, n, L), computed in float32."""
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    query = attn.to_q(hidden_states).float()
    key = attn.to_k(context).float()
    query = rearrange(query, "b n (h d) -> b h n d", h=attn.heads)
    key = rearrange(key, "b l (h d) -> b h l d", h=attn.heads)
    return (query @ key.transpose(-1, -2) * attn.scale).softmax(-1).mean(1)


class StoringCrossAttnProcessor:
    """Runs the layer's own processor unchanged and records its head-averaged probabilities in ``store``.

    Its arguments are those of :class:`~vidsynth.models.attention.FramesAttnProcessor` (diffusers passes a
    processor only the keyword arguments its ``__call__`` declares).
    """

    def __init__(self, inner: object, store: CrossAttentionStore):
        self.inner = inner
        self.store = store

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
        out = self.inner(
            attn, hidden_states, encoder_hidden_states, attention_mask, temb, num_frames, sparse_causal_cache
        )
        if encoder_hidden_states is not None and hidden_states.shape[1] <= self.store.max_tokens:
            with torch.no_grad():
                probs = attention_probs(attn, hidden_states, encoder_hidden_states)
            self.store.add(probs, num_frames or hidden_states.shape[0])
        return out


@contextmanager
def storing_cross_attention(unet: torch.nn.Module, store: CrossAttentionStore) -> Iterator[CrossAttentionStore]:
    """Record the ``attn2`` maps of ``unet`` into ``store`` inside the block; every processor is restored after."""
    original = dict(unet.attn_processors)
    storing = {
        name: StoringCrossAttnProcessor(processor, store) if name.endswith("attn2.processor") else processor
        for name, processor in original.items()
    }
    unet.set_attn_processor(storing)
    try:
        yield store
    finally:
        unet.set_attn_processor(original)
