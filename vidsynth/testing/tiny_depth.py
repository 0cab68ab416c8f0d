"""A tiny random depth-estimation model laid out like ``depth-anything/Depth-Anything-V2-Small-hf``.

The depth control loads its model with ``AutoModelForDepthEstimation.from_pretrained`` and its image
processor with ``AutoImageProcessor.from_pretrained(..., backend="pil")``; this folder has the same
files (``config.json``, ``model.safetensors``, ``preprocessor_config.json``: a Depth Anything with a
DINOv2 backbone, and DPT's image processor) at toy width, so the very code that runs the real model is
what the tests exercise. The processor is PIL-only (no torchvision). The depth means nothing.
"""

from pathlib import Path

import torch
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

PATCH_SIZE = 14
IMAGE_SIZE = 28  # the real model's processor resizes to 518 (37 patches); here 2 patches
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build_tiny_depth(path: str | Path, seed: int = 0) -> Path:
    """Write the tiny depth model and its image processor config to ``path``; the global RNG is kept."""
    path = Path(path)
    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=4,
        patch_size=PATCH_SIZE,
        depth_estimation_type="relative",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config).eval()
    model.save_pretrained(path)
    processor = DPTImageProcessorPil(  # the real model's settings, at the tiny size
        do_resize=True,
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        keep_aspect_ratio=True,
        ensure_multiple_of=PATCH_SIZE,
        resample=3,  # PIL bicubic
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        do_pad=False,
    )
    processor.save_pretrained(path)
    return path
