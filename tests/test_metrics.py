"""The metric formulas against hand computations, their invariances, and CLIP scoring on a tiny checkpoint."""

import math

import numpy as np
import pytest
from transformers import CLIPImageProcessorPil

from vidsynth.errors import VidSynthError
from vidsynth.evaluation.metrics import (
    ClipScorer,
    flicker,
    frame_consistency_all_pairs,
    frame_consistency_consecutive,
    text_alignment,
)
from vidsynth.testing.tiny_clip import IMAGE_SIZE, PROJECTION_DIM, build_tiny_clip


def _at_angles(degrees, lengths):
    """2-D vectors (N, 2) at the given angles with the given lengths (lengths must not matter)."""
    rad = np.deg2rad(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1) * np.asarray(lengths, dtype=float)[:, None]


# Three frames at 0°, 60° and 90°: pairwise cosines are cos 60° = 1/2, cos 90° = 0 and cos 30° = √3/2.
THREE_FRAMES = _at_angles([0, 60, 90], [2.0, 0.5, 3.0])


def test_all_pairs_matches_hand_computation():
    expected = 100 * (0.5 + 0.0 + math.sqrt(3) / 2) / 3  # mean over the 3 unordered (= 6 ordered) pairs
    assert frame_consistency_all_pairs(THREE_FRAMES) == pytest.approx(expected, abs=1e-9)


def test_consecutive_matches_hand_computation():
    expected = 100 * (0.5 + math.sqrt(3) / 2) / 2  # (0°, 60°) and (60°, 90°)
    assert frame_consistency_consecutive(THREE_FRAMES) == pytest.approx(expected, abs=1e-9)


def test_text_alignment_matches_hand_computation():
    text = _at_angles([30], [7.0])  # (1, 2): 30° from frames 0 and 1, 60° from frame 2
    expected = 100 * (math.sqrt(3) / 2 + math.sqrt(3) / 2 + 0.5) / 3
    assert text_alignment(THREE_FRAMES, text) == pytest.approx(expected, abs=1e-9)
    assert text_alignment(THREE_FRAMES, text[0]) == pytest.approx(expected, abs=1e-9)  # (D,) form
    assert text_alignment(THREE_FRAMES, -text[0]) == pytest.approx(-expected, abs=1e-9)  # not clamped at 0


def test_flicker_matches_hand_computation_without_uint8_wraparound():
    source = np.array([0, 10, 20], np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)  # steps of 10
    edited = np.array([200, 10, 200], np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)  # steps of 190
    assert flicker(edited, source) == pytest.approx(19.0, abs=1e-12)
    # Float frames in [0, 1] mean the same as uint8 ones.
    assert flicker(edited / 255.0, source) == pytest.approx(19.0, abs=1e-12)


def test_identical_frames_are_fully_consistent_and_do_not_flicker():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(1, 8)), 5, axis=0)  # (5, 8)
    assert frame_consistency_all_pairs(same) == pytest.approx(100.0, abs=1e-9)
    assert frame_consistency_consecutive(same) == pytest.approx(100.0, abs=1e-9)
    source = rng.integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)
    frozen = np.repeat(source[:1], 5, axis=0)
    assert flicker(frozen, source) == 0.0
    assert flicker(source, source) == pytest.approx(1.0)


def test_order_and_scale_invariances():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(6, 8))
    reversed_emb = emb[::-1]
    assert frame_consistency_all_pairs(reversed_emb) == pytest.approx(frame_consistency_all_pairs(emb), abs=1e-9)
    assert frame_consistency_consecutive(reversed_emb) == pytest.approx(frame_consistency_consecutive(emb), abs=1e-9)
    scaled = emb * rng.uniform(0.1, 10.0, size=(6, 1))
    assert frame_consistency_all_pairs(scaled) == pytest.approx(frame_consistency_all_pairs(emb), abs=1e-9)
    assert frame_consistency_consecutive(scaled) == pytest.approx(frame_consistency_consecutive(emb), abs=1e-9)
    text = rng.normal(size=8)
    assert text_alignment(scaled, 3 * text) == pytest.approx(text_alignment(emb, text), abs=1e-9)
    # A shuffle keeps the set of pairs but not the neighbours: only the all-pairs score must survive it.
    shuffled = emb[[0, 3, 1, 5, 2, 4]]
    assert frame_consistency_all_pairs(shuffled) == pytest.approx(frame_consistency_all_pairs(emb), abs=1e-9)
    assert frame_consistency_consecutive(shuffled) != pytest.approx(frame_consistency_consecutive(emb), abs=1e-6)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(VidSynthError, match="at least 2 frames"):
        frame_consistency_all_pairs(np.ones((1, 4)))
    with pytest.raises(VidSynthError, match="at least 2 frames"):
        frame_consistency_consecutive(np.ones((1, 4)))
    with pytest.raises(VidSynthError, match="do not match"):
        text_alignment(np.ones((3, 4)), np.ones(5))
    static = np.full((3, 2, 2, 3), 7, np.uint8)
    with pytest.raises(VidSynthError, match="source frames are all identical"):
        flicker(static + np.arange(3, dtype=np.uint8)[:, None, None, None], static)
    with pytest.raises(VidSynthError, match="same shape"):
        flicker(np.zeros((3, 2, 2, 3)), np.zeros((3, 2, 4, 3)))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), seed=0)


def _smooth_frames(num_frames, height, width, seed=0):
    """uint8 (F, H, W, 3) gradients with a moving offset: natural-image-like, so resampling differences stay small."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)  # (H, W)
    frames = []
    for t in range(num_frames):
        phase = rng.uniform(0, 2 * np.pi, size=3)
        channels = [np.sin(4 * xx + 3 * yy + p + 0.3 * t) for p in phase]
        frames.append(np.stack(channels, axis=-1))
    return ((np.stack(frames) + 1) * 127.5).round().astype(np.uint8)


def test_tiny_clip_round_trip_shapes_and_determinism(tiny_clip, tmp_path):
    frames = _smooth_frames(5, 40, 56)  # not square, not the model size: exercises resize + crop
    scorer = ClipScorer(tiny_clip, batch_size=2)
    image_emb = scorer.image_embeddings(frames)
    text_emb = scorer.text_embedding("a man skiing on snow")
    assert image_emb.shape == (5, PROJECTION_DIM) and image_emb.dtype == np.float32
    assert text_emb.shape == (PROJECTION_DIM,)
    assert np.isfinite(image_emb).all() and np.isfinite(text_emb).all()
    assert scorer.processor.crop_size == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    assert scorer.processor.size == {"shortest_edge": IMAGE_SIZE}
    # Batching does not change results; the same seed rebuilds the same model, another seed does not.
    np.testing.assert_allclose(ClipScorer(tiny_clip, batch_size=16).image_embeddings(frames), image_emb, atol=1e-5)
    same = ClipScorer(build_tiny_clip(tmp_path / "again", seed=0), batch_size=2)
    np.testing.assert_array_equal(same.image_embeddings(frames), image_emb)
    np.testing.assert_array_equal(same.text_embedding("a man skiing on snow"), text_emb)
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (tiny_clip / "model.safetensors").read_bytes()
    other = ClipScorer(build_tiny_clip(tmp_path / "other", seed=1))
    assert not np.allclose(other.image_embeddings(frames), image_emb, atol=1e-3)
    assert not np.allclose(scorer.text_embedding("a red car"), text_emb, atol=1e-3)


def test_preprocessing_is_the_checkpoints_clip_image_processor(tiny_clip):
    """The scorer's pixel values are CLIPImageProcessor's steps with the checkpoint's size, crop, mean and std."""
    frames = _smooth_frames(3, 48, 80, seed=2)  # not square, not the model size: resize and crop both act
    reference = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )(images=list(frames), return_tensors="pt").pixel_values  # (3, 3, 32, 32), OpenAI's mean and std
    ours = ClipScorer(tiny_clip).preprocess(frames)
    assert ours.shape == reference.shape == (3, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert (ours - reference).abs().max() < 1e-5


def test_missing_preprocessor_config_falls_back_to_openai_defaults(tiny_clip, tmp_path):
    bare = build_tiny_clip(tmp_path / "bare", seed=0)
    (bare / "preprocessor_config.json").unlink()
    frames = _smooth_frames(2, 32, 48)
    np.testing.assert_allclose(
        ClipScorer(bare).image_embeddings(frames), ClipScorer(tiny_clip).image_embeddings(frames), atol=1e-6
    )


def test_missing_clip_model_says_how_to_fix(tmp_path):
    with pytest.raises(VidSynthError, match="--clip-model") as err:
        ClipScorer(tmp_path / "no_such_clip")
    assert "not a local folder" in str(err.value)
