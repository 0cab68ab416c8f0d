"""Word regions: the cross-attention maps are recorded without changing the UNet, land on their frames with
windows, and become masks that are empty where the word draws no attention."""

import pytest
import torch
import torch.nn.functional as F

from vidsynth.errors import VidSynthError
from vidsynth.regions.attention_maps import CrossAttentionStore, storing_cross_attention
from vidsynth.regions.masks import dilate
from vidsynth.regions.word import (
    MIN_SHARE,
    TEXT_POSITIONS,
    cross_attention_maps,
    maps_to_masks,
    token_positions,
    word_masks,
)

PROMPT = "a man is surfing on the sea"


@pytest.fixture(scope="module")
def causal_pipe(tiny_sd, one_thread):
    """The tiny pipeline with per-frame GroupNorm and temporal attention at its identity start: windows are exact."""
    from vidsynth.models.norm import FrameGroupNorm
    from vidsynth.pipelines import ModelSource, load_pipeline

    pipe = load_pipeline(ModelSource("base", str(tiny_sd)))
    for module in pipe.unet.modules():
        if isinstance(module, FrameGroupNorm):
            module.joint = False
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_storing_processor_keeps_the_output_and_stores_the_softmax(causal_pipe):
    unet = causal_pipe.unet
    sample = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    text, _ = causal_pipe.encode_prompt([PROMPT], torch.device("cpu"), 1, False)
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    inputs = {}  # attn2 module -> (hidden states, text) it was called with

    def record(module, args, kwargs):
        inputs[module] = (args[0], kwargs["encoder_hidden_states"])

    hooks = [
        m.register_forward_pre_hook(record, with_kwargs=True) for n, m in unet.named_modules() if n.endswith("attn2")
    ]
    with torch.no_grad():
        plain = unet(sample, 500, encoder_hidden_states=text).sample
        store = CrossAttentionStore(num_frames=3, tokens=list(range(77)))
        with storing_cross_attention(unet, store):
            stored = unet(sample, 500, encoder_hidden_states=text).sample
    for hook in hooks:
        hook.remove()

    assert (stored - plain).abs().max() < 1e-5
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before  # sparse-causal etc. are back
    assert sorted(store.sums) == [16, 64]  # the tiny UNet's 8x8 and 4x4 cross-attention layers
    expected = {}
    for attn, (hidden, context) in inputs.items():
        heads = attn.heads
        query = (hidden @ attn.to_q.weight.T).unflatten(-1, (heads, -1)).transpose(1, 2)  # (f, heads, n, d)
        key = (context @ attn.to_k.weight.T).unflatten(-1, (heads, -1)).transpose(1, 2)  # (f, heads, 77, d)
        probs = torch.softmax(query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5, dim=-1).mean(1)
        expected.setdefault(hidden.shape[1], []).append(probs)
    for tokens, maps in expected.items():
        assert torch.equal(store.counts[tokens], torch.full((3,), float(len(maps))))
    upsampled = [  # each layer call's map (mean over the tokens) at the finest resolution (8x8)
        F.interpolate(probs.mean(-1).reshape(3, 1, 8 // s, 8 // s), size=(8, 8), mode="bilinear")[:, 0]
        for tokens, maps in expected.items()
        for probs in maps
        for s in [round((64 / tokens) ** 0.5)]
    ]
    assert (store.frame_maps(8, 8) - torch.stack(upsampled).mean(0)).abs().max() < 1e-5


def test_word_masks_per_frame_and_windows_put_the_maps_on_their_frames(causal_pipe):
    latents = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    trajectory = causal_pipe.invert(latents, PROMPT, num_inference_steps=2, return_all=True)
    tokens = token_positions(causal_pipe.tokenizer, PROMPT, "surfing")
    full = cross_attention_maps(causal_pipe, trajectory, PROMPT, tokens, window=None, window_overlap=0)
    windowed = cross_attention_maps(causal_pipe, trajectory, PROMPT, tokens, window=2, window_overlap=1)
    assert full.shape == (4, 8, 8) and (full > 0).all()
    assert (windowed - full).abs().max() < 1e-5  # each window's maps on the clip frames it covers
    assert not torch.allclose(full[0], full[3])  # the frames do differ, so a shifted frame would show

    masks = word_masks(
        causal_pipe,
        trajectory,
        PROMPT,
        "surfing",
        height=64,
        width=64,
        threshold=0.5,
        window=2,
        window_overlap=1,
    )
    assert masks.shape == (4, 64, 64) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert masks.sum() > 0  # the clip's peak is inside
    expected = maps_to_masks(windowed, height=64, width=64, threshold=0.5)
    assert torch.equal(masks, expected)


def test_masks_follow_the_clip_wide_peak_and_grow_by_dilate_as_a_disc():
    maps = torch.full((2, 8, 8), 0.01)
    maps[1, 3, 4] = 0.2  # frame 0: even, weak attention; frame 1: a peak
    plain = maps_to_masks(maps, height=64, width=64, threshold=0.5)
    grown = torch.from_numpy(dilate(plain.numpy(), 3))
    assert plain[0].sum() == 0 and grown[0].sum() == 0  # divided by the clip's peak, not the frame's own
    rows, cols = plain[1].nonzero().T
    grown_rows, grown_cols = grown[1].nonzero().T
    assert rows.numel() > 0
    assert (grown_rows.min(), grown_rows.max()) == (rows.min() - 3, rows.max() + 3)
    assert (grown_cols.min(), grown_cols.max()) == (cols.min() - 3, cols.max() + 3)
    assert 24 <= rows.min() and rows.max() < 32  # latent row 3 covers pixel rows 24..31


def test_a_word_with_less_than_a_small_share_of_attention_gets_empty_masks():
    """Hand-made maps: probabilities well above 1e-6 but a mean under MIN_SHARE of an even 1/77 spread."""
    maps = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(4)) * 0.9 * MIN_SHARE / TEXT_POSITIONS
    assert maps.max() > 1e-4
    assert maps_to_masks(maps, height=32, width=32, threshold=0.5).sum() == 0
    assert maps_to_masks(maps * 3, height=32, width=32, threshold=0.5).sum() > 0  # above the share: attended


def test_token_positions_find_phrases_and_refuse_absent_words(causal_pipe):
    tokenizer = causal_pipe.tokenizer
    ids = tokenizer(PROMPT).input_ids
    surfing_on = token_positions(tokenizer, PROMPT, "surfing on")
    assert [ids[p] for p in surfing_on] == tokenizer("surfing on", add_special_tokens=False).input_ids
    assert surfing_on == list(range(surfing_on[0], surfing_on[-1] + 1)) and surfing_on[0] > 0
    pieces = tokenizer("surfer", add_special_tokens=False).input_ids
    assert len(pieces) > 1  # not a word of the tiny vocabulary: several tokens
    found = token_positions(tokenizer, "the surfer and a surfer", "Surfer")
    assert len(found) == 2 * len(pieces)  # both occurrences, every piece, case as the tokenizer folds it

    with pytest.raises(VidSynthError, match=r"'panda' is not in the prompt .* \(its words: a, man, is, surfing"):
        token_positions(tokenizer, PROMPT, "panda")
    with pytest.raises(VidSynthError, match="not in the prompt"):
        token_positions(tokenizer, "sea " * 80 + "panda", "panda")  # past the 77 tokens the encoder reads
    with pytest.raises(VidSynthError, match="not in the prompt"):
        token_positions(tokenizer, PROMPT, "sea man")  # both words, not as a phrase
