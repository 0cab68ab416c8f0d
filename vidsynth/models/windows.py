"""The video UNet over a clip longer than its window: overlapping windows, run in order, blended.

The UNet's activations grow with the frames it sees at once, so a whole clip (hundreds of frames)
goes through in windows of ``window`` frames that overlap by ``overlap``. What each part of the model
sees:

* **sparse-causal attention stays exact.** Frame i attends to the clip's first frame (the anchor)
  and to frame i-1, as in a full-clip forward, also at a window's first frame. Attention is causal,
  so the windows run in order and every sparse-causal layer keeps, in a :class:`SparseCausalCache`,
  the anchor's hidden states (from the first window) and those of the frame just before the next
  window (like a causal language model's key/value cache);
* **temporal attention and the joint GroupNorm see the window**, as in tuning (whose steps see one
  window of the clip);
* frames that several windows cover get the **weighted mean** of their noise predictions, with
  weights that fall off towards a window's ends ("pyramid", as diffusers' FreeNoise weighs them);
* a ControlNet's maps are cut to the window with the latents (it sees one frame at a time, so its
  residuals are the same in every window that covers a frame).

With the temporal output projection at zero (its initial state) and per-frame GroupNorm, the result
equals one full-clip forward for any window and overlap (tests/test_windows.py).
"""

from dataclasses import dataclass, field

import torch

from vidsynth.errors import VidSynthError
from vidsynth.models.control import VideoControl


@dataclass
class SparseCausalCache:
    """Hidden states that sparse-causal layers carry from one window to the next, keyed by layer.

    ``first``: the window starts at the clip's first frame (its frame 0 is the anchor). ``keep``:
    index, within the window, of the frame the next window's first frame attends to as "previous".
    """

    first: bool = True
    keep: int | None = None
    anchor: dict = field(default_factory=dict)  # layer -> (b, n, c)
    previous: dict = field(default_factory=dict)  # layer -> (b, n, c): the frame before this window
    _next_previous: dict = field(default_factory=dict)

    def start_window(self, first: bool, keep: int | None) -> None:
        """Move on to the next window: what the last one kept becomes "previous"."""
        self.previous, self._next_previous = self._next_previous, {}
        self.first, self.keep = first, keep

    def context(self, layer: object, frames: torch.Tensor) -> torch.Tensor:
        """Keys/values for the window's frames (b, f, n, c) -> (b, f, 2n, c): [anchor, previous frame]."""
        if self.first:
            self.anchor[layer] = frames[:, 0]
            previous_of_first = frames[:, 0]  # frame 0 attends to itself twice, as the original does
        else:
            previous_of_first = self.previous[layer]
        if self.keep is not None:
            self._next_previous[layer] = frames[:, self.keep]
        anchor = self.anchor[layer][:, None].expand_as(frames)  # (b, f, n, c)
        previous = torch.cat([previous_of_first[:, None], frames[:, :-1]], dim=1)  # (b, f, n, c)
        return torch.cat([anchor, previous], dim=2)


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """First frames of the windows: every ``window - overlap`` frames, the last one flush with the clip's end."""
    check_windows(num_frames, window, overlap)
    step = window - overlap
    starts = list(range(0, num_frames - window, step))
    return [*starts, num_frames - window]


def check_windows(num_frames: int, window: int, overlap: int) -> None:
    if window < 1 or window > num_frames:
        raise VidSynthError(
            f"a window of {window} frames does not fit a span of {num_frames} frames. Use a window from 1 to "
            f"{num_frames} (the run's n_sample_frames is the usual choice)"
        )
    if not 0 <= overlap < window:
        raise VidSynthError(
            f"window overlap {overlap} must be at least 0 and less than the window ({window} frames). "
            f"Use e.g. {window // 4}"
        )


def pyramid_weights(window: int) -> torch.Tensor:
    """(window,) weights 1, 2, ..., peak, ..., 2, 1: a frame counts most in the window it is central to."""
    index = torch.arange(window, dtype=torch.float32)
    return torch.minimum(index + 1, window - index)


def blend(predictions: list[tuple[int, torch.Tensor]], num_frames: int) -> torch.Tensor:
    """Weighted mean per frame of window predictions [(start, (b, c, w, h, w))] -> (b, c, num_frames, h, w)."""
    _, first = predictions[0]
    total = first.new_zeros(*first.shape[:2], num_frames, *first.shape[3:])  # (b, c, F, h, w)
    weight = first.new_zeros(num_frames)
    for start, prediction in predictions:
        frames = prediction.shape[2]
        w = pyramid_weights(frames).to(prediction)
        total[:, :, start : start + frames] += prediction * w[None, None, :, None, None]
        weight[start : start + frames] += w
    return total / weight[None, None, :, None, None]


def windowed_unet(
    unet: torch.nn.Module,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    encoder_hidden_states: torch.Tensor,
    window: int,
    overlap: int,
    control: VideoControl | None = None,
) -> torch.Tensor:
    """The UNet's prediction for ``sample`` (b, c, F, h, w), run over windows of ``window`` frames in order.

    ``window >= F`` is one ordinary forward (the UNet as it is, bit for bit). ``control``: ControlNet
    maps for all F frames, cut to each window.
    """
    num_frames = sample.shape[2]
    if window >= num_frames:
        return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, control=control).sample
    starts = window_starts(num_frames, window, overlap)
    cache = SparseCausalCache()
    predictions = []
    for i, start in enumerate(starts):
        following = starts[i + 1] if i + 1 < len(starts) else None
        cache.start_window(first=start == 0, keep=None if following is None else following - 1 - start)
        chunk = sample[:, :, start : start + window]  # (b, c, W, h, w)
        kwargs = {"sparse_causal_cache": cache}
        window_control = None if control is None else control.window(start, start + window)  # maps (b, 3, W, H, W)
        out = unet(
            chunk,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            cross_attention_kwargs=kwargs,
            control=window_control,
        )
        predictions.append((start, out.sample))
    return blend(predictions, num_frames)
