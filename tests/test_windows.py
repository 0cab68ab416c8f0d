"""The video UNet over windows of a long clip: exact where the model is causal, unchanged where F <= W."""

import pytest
import torch

from vidsynth.errors import VidSynthError
from vidsynth.models import VideoUNet
from vidsynth.models.windows import blend, pyramid_weights, window_starts, windowed_unet

FRAMES, LATENT = 11, 4


@pytest.fixture(scope="module")
def causal_unet(tiny_sd):
    """Per-frame GroupNorm and the temporal output projection at zero (as inflated): a causal model."""
    return VideoUNet.from_pretrained_2d(tiny_sd, frame_norm="per_frame").eval()


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, 4, FRAMES, LATENT, LATENT, generator=generator)  # (b, c, F, h, w)
    text = torch.randn(2, 77, 32, generator=generator)  # (b, 77, D) of the tiny text encoder
    return sample, text


@torch.no_grad()
@pytest.mark.parametrize(("window", "overlap"), [(4, 1), (3, 0), (5, 4), (2, 1), (10, 3)])
def test_windows_equal_one_full_clip_forward_when_the_model_is_causal(causal_unet, window, overlap):
    sample, text = _inputs()
    full = causal_unet(sample, 500, encoder_hidden_states=text).sample
    windowed = windowed_unet(causal_unet, sample, 500, text, window, overlap)
    assert windowed.shape == full.shape
    assert (windowed - full).abs().max() <= 1e-5, (windowed - full).abs().max()


@torch.no_grad()
def test_without_the_cache_window_boundaries_would_differ(causal_unet, monkeypatch):
    """The check above can fail: a window that restarted sparse-causal attention at its own first frame differs."""
    sample, text = _inputs(1)
    full = causal_unet(sample, 500, encoder_hidden_states=text).sample
    restarted = torch.cat(
        [causal_unet(sample[:, :, s : s + 4], 500, encoder_hidden_states=text).sample for s in (0, 4, 8)][:2], dim=2
    )  # frames 0-7, each window on its own
    assert (restarted[:, :, :4] - full[:, :, :4]).abs().max() <= 1e-5  # the first window is exact either way
    assert (restarted[:, :, 4:] - full[:, :, 4:8]).abs().max() > 1e-3


@torch.no_grad()
def test_a_clip_within_one_window_takes_the_ordinary_path_bit_for_bit(tiny_sd):
    unet = VideoUNet.from_pretrained_2d(tiny_sd).eval()  # joint GroupNorm: not causal, so only this path is exact
    sample, text = _inputs(2)
    full = unet(sample, 250, encoder_hidden_states=text).sample
    for window in (FRAMES, FRAMES + 5):
        assert torch.equal(windowed_unet(unet, sample, 250, text, window, 2), full)


def test_blending_constant_predictions_returns_them_unchanged():
    value = torch.randn(2, 4, 1, 3, 3)
    for window, overlap in ((4, 1), (5, 3), (3, 0)):
        predictions = [(s, value.expand(-1, -1, window, -1, -1)) for s in window_starts(FRAMES, window, overlap)]
        assert torch.allclose(blend(predictions, FRAMES), value.expand(-1, -1, FRAMES, -1, -1), atol=1e-6)


def test_windows_cover_every_frame_and_end_flush():
    for frames, window, overlap in ((11, 4, 1), (96, 24, 4), (24, 24, 4), (25, 24, 0)):
        starts = window_starts(frames, window, overlap)
        covered = {f for s in starts for f in range(s, s + window)}
        assert covered == set(range(frames)) and starts[0] == 0 and starts[-1] == frames - window
        assert all(b - a <= window - overlap for a, b in zip(starts, starts[1:], strict=False))
    assert pyramid_weights(5).tolist() == [1, 2, 3, 2, 1]


@pytest.mark.parametrize(
    ("window", "overlap", "message"),
    [(12, 2, "window of 12 frames does not fit a span of 11"), (4, 4, "overlap 4 must be .* less than the window")],
)
def test_bad_windows_say_the_fix(window, overlap, message):
    with pytest.raises(VidSynthError, match=message):
        window_starts(FRAMES, window, overlap)
