"""Segmentation regions: SAM 2's inputs prepared by hand as its processor describes them, and the tiny CLIPSeg and
SAM 2 video models run through the real from_pretrained, one mask per frame, with no torchvision."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.sam2_video.processing_sam2_video import Sam2VideoProcessor
from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

from vidsynth.errors import VidSynthError
from vidsynth.regions.segment import _prompt, sam2_pixels, segment_masks, text_box

CPU = torch.device("cpu")


def test_sam2_pixels_are_what_the_sam2_video_processor_describes():
    """Its class attributes: square size, bilinear, rescale 1/255, ImageNet mean and std; PIL's antialiased
    bilinear resize (the filter torchvision's antialias reproduces) written out per channel."""
    processor = Sam2VideoVideoProcessor
    assert processor.size["height"] == processor.size["width"]
    assert processor.resample == Image.Resampling.BILINEAR and processor.do_rescale and processor.do_normalize
    frame = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    resized = np.stack(
        [np.asarray(Image.fromarray(frame[..., c].astype(np.float32)).resize((8, 8), 2)) for c in range(3)]
    )
    mean = np.array(processor.image_mean)[:, None, None]
    std = np.array(processor.image_std)[:, None, None]
    assert np.abs(sam2_pixels(frame, 8).numpy() - (resized / 255 - mean) / std).max() < 1e-5
    same_size = sam2_pixels(frame[:8, :8], 8).numpy()
    assert np.abs(same_size - (frame[:8, :8].transpose(2, 0, 1) / 255 - mean) / std).max() < 1e-5


def test_prompts_are_scaled_like_the_sam2_video_processor_scales_them():
    prompt = _prompt((10.0, 20.0), (4.0, 6.0, 40.0, 30.0), 64 / 48, 64 / 36)
    box = Sam2VideoProcessor._normalize_coordinates(None, 64, torch.tensor([[4.0, 6.0, 40.0, 30.0]]), (36, 48), True)
    point = Sam2VideoProcessor._normalize_coordinates(None, 64, torch.tensor([[10.0, 20.0]]), (36, 48))
    assert torch.allclose(prompt["point_coords"][0, 0], torch.cat([box.reshape(2, 2), point]))
    assert prompt["point_labels"].tolist() == [[[2, 3, 1]]]  # box corners first, as the processor puts them


def test_tiny_segmentation_models_give_one_mask_per_frame_from_a_text_or_a_point(one_thread):
    frames = np.random.default_rng(1).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    common = {"model": "tiny", "text_model": "tiny", "device": CPU, "dtype": torch.float32}
    clicked = segment_masks(frames, text=None, point=(20.0, 30.0), box=None, threshold=0.5, **common)
    assert clicked.shape == (4, 48, 64) and clicked.dtype == torch.float32
    assert set(clicked.unique().tolist()) <= {0.0, 1.0}
    strict = segment_masks(frames, text=None, point=(20.0, 30.0), box=None, threshold=0.95, **common)
    assert torch.equal(strict, clicked)  # SAM 2's masks are cut at logit 0; the threshold is CLIPSeg's only

    # Random weights: with threshold 0 every CLIPSeg pixel counts, so the box is the whole frame.
    assert text_box(frames[0], "person", "tiny", CPU, torch.float32, 0.0) == (0, 0, 64, 48)
    texted = segment_masks(frames, text="person", point=None, box=None, threshold=0.0, **common)
    assert texted.shape == (4, 48, 64) and set(texted.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(VidSynthError, match=r"'person' matches nothing in the span's first frame \(frame 0.*point"):
        segment_masks(frames, text="person", point=None, box=None, threshold=1.0, **common)
    with pytest.raises(VidSynthError, match="a text, or with a point and/or a box"):
        segment_masks(frames, text="person", point=(1.0, 1.0), box=None, threshold=0.5, **common)
    assert "torchvision" not in sys.modules


def test_a_segmentation_model_that_cannot_be_loaded_says_how_to_get_it(tmp_path):
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    point = {"text": None, "point": (1.0, 1.0), "box": None, "device": CPU, "dtype": torch.float32, "threshold": 0.5}
    with pytest.raises(
        VidSynthError, match=r"segmentation model org/not-downloaded \(HF_HUB_OFFLINE is set\).*--segment"
    ):
        segment_masks(frames, model="org/not-downloaded", text_model="tiny", **point)
    with pytest.raises(VidSynthError, match=f"cannot load the segmentation model {tmp_path}: .*--segment"):
        segment_masks(frames, model=str(tmp_path), text_model="tiny", **point)  # a folder without a model
