"""A region from a word of the prompt: where the UNet attends to it, frame by frame (FateZero-style).

No extra model: the clip's inversion trajectory goes through the UNet once more with the prompt that
holds the word, while :mod:`~vidsynth.regions.attention_maps` records the cross-attention of the word's
tokens. Maps of layers at 32x32 latent positions or fewer are averaged over heads, layers, steps and
the word's tokens; the maps are divided by their maximum over the whole clip (so a frame where the word
is weaker keeps less of it), upsampled to the frame size and thresholded (:mod:`vidsynth.regions.masks`
grows them). A word the UNet hardly attends to gets empty masks: when its mean probability over the maps is
below :data:`MIN_SHARE` of an even spread over the text's positions, a division by the maximum would only
blow noise up to a mask.
"""

import re

import torch
import torch.nn.functional as F

from vidsynth.errors import VidSynthError
from vidsynth.models.frozen_weights import compute_dtype
from vidsynth.models.windows import window_starts, windowed_unet
from vidsynth.pipelines.inversion import inversion_scheduler
from vidsynth.regions.attention_maps import CrossAttentionStore, storing_cross_attention

# A word whose mean attention probability is below this share of an even spread over CLIP's 77 text positions
# (1/77 each) counts as not attended.
MIN_SHARE = 0.05
TEXT_POSITIONS = 77


def token_positions(tokenizer, prompt: str, phrase: str) -> list[int]:
    """Positions of ``phrase``'s tokens in ``prompt``'s token sequence (start token at 0), every occurrence.

    Only the tokens the text encoder reads count (``model_max_length``, 77 for CLIP); a phrase that is
    not there fails with the prompt's words.
    """
    wanted = tokenizer(phrase, add_special_tokens=False).input_ids
    ids = tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length).input_ids
    positions = []
    for start in range(len(ids) - len(wanted) + 1):
        if wanted and ids[start : start + len(wanted)] == wanted:
            positions.extend(range(start, start + len(wanted)))
    if not positions:
        words = ", ".join(dict.fromkeys(re.findall(r"[\w'-]+", prompt.lower()))) or "none"
        raise VidSynthError(
            f"the region {phrase!r} is not in the prompt {prompt!r} (its words: {words}). "
            "Pass a word or phrase of the prompt"
        )
    return sorted(set(positions))


class _WindowOffsets:
    """The UNet, telling ``store`` which clip frame each call (one window, in order) starts at."""

    def __init__(self, unet: torch.nn.Module, store: CrossAttentionStore, starts: list[int]):
        self.unet, self.store, self.starts, self.calls = unet, store, starts, 0

    def __call__(self, sample: torch.Tensor, *args, **kwargs):
        self.store.frame_offset = self.starts[self.calls % len(self.starts)]
        self.calls += 1
        return self.unet(sample, *args, **kwargs)


@torch.no_grad()
def cross_attention_maps(
    pipe, trajectory: list[torch.Tensor], prompt: str, tokens: list[int], *, window: int | None, window_overlap: int
) -> torch.Tensor:
    """(F, h', w') mean cross-attention of ``tokens`` per frame, at the finest kept resolution (float32).

    ``trajectory``: ``pipe.invert(..., return_all=True)``, latents (1, 4, F, h, w) from x0 to x_T; step i's
    UNet pass is on ``trajectory[i]`` at the i-th inversion timestep, as in the inversion itself.
    """
    latents = trajectory[0]
    num_frames, height, width = latents.shape[2:]
    steps = len(trajectory) - 1
    if steps < 1:
        raise VidSynthError("the word region needs an inversion trajectory of at least one step. Use --steps 1 or more")
    device = pipe._execution_device
    text, _ = pipe.encode_prompt([prompt] * latents.shape[0], device, 1, False)
    scheduler = inversion_scheduler(pipe.scheduler.config, steps)
    store = CrossAttentionStore(num_frames, tokens)
    with storing_cross_attention(pipe.unet, store):
        window = num_frames if window is None else min(window, num_frames)
        starts = window_starts(num_frames, window, window_overlap) if window < num_frames else [0]
        unet, dtype = _WindowOffsets(pipe.unet, store, starts), compute_dtype(pipe.unet)
        for sample, timestep in zip(trajectory[:-1], scheduler.timesteps, strict=True):
            windowed_unet(unet, sample.to(device, dtype), timestep, text, window, window_overlap)
    if not store.sums:
        raise VidSynthError("the UNet has no cross-attention at 32x32 latents or fewer to take a word region from")
    return store.frame_maps(height, width)


def maps_to_masks(maps: torch.Tensor, *, height: int, width: int, threshold: float) -> torch.Tensor:
    """(F, h, w) attention maps -> (F, height, width) float32 masks in {0, 1}.

    The maps are divided by their clip-wide maximum, upsampled (bilinear) and kept where above ``threshold``;
    all empty when the word is not attended (mean below :data:`MIN_SHARE` / :data:`TEXT_POSITIONS`).
    """
    if maps.mean() < MIN_SHARE / TEXT_POSITIONS:
        return torch.zeros(maps.shape[0], height, width)
    normalised = maps / maps.max()
    upsampled = F.interpolate(normalised[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)
    return (upsampled[:, 0] > threshold).float()


def word_masks(
    pipe,
    trajectory: list[torch.Tensor],
    prompt: str,
    phrase: str,
    *,
    height: int,
    width: int,
    threshold: float,
    window: int | None,
    window_overlap: int,
) -> torch.Tensor:
    """(F, height, width) float32 masks in {0, 1} of where ``phrase`` of ``prompt`` is in each frame."""
    tokens = token_positions(pipe.tokenizer, prompt, phrase)
    maps = cross_attention_maps(pipe, trajectory, prompt, tokens, window=window, window_overlap=window_overlap)
    return maps_to_masks(maps, height=height, width=width, threshold=threshold)
