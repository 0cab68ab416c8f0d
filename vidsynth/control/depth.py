"""Depth maps, the input of the depth ControlNet: a transformers depth-estimation model on each frame.

The model (default ``depth-anything/Depth-Anything-V2-Small-hf``, 25 M parameters) and its image
processor load with the real ``from_pretrained``; the processor's PIL backend needs no torchvision.
It predicts relative inverse depth (near is large), as MiDaS does, whose maps the SD-1.5 depth
ControlNet was trained on; each frame's map is scaled to [0, 255] on its own, because relative depth
has no common scale across images (diffusers' depth examples do the same).
"""

import logging

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import MODEL_FOR_DEPTH_ESTIMATION_MAPPING, AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

from vidsynth.control.spec import DOWNLOAD_FIX, load_error
from vidsynth.errors import VidSynthError
from vidsynth.hub import require_model

logger = logging.getLogger(__name__)

BATCH = 8  # frames through the depth model at once


def check_depth_model(source: str) -> None:
    """Refuse ``source`` (from its config alone) unless it is a model ``AutoModelForDepthEstimation`` loads."""
    require_model(source, "config.json", "depth model", DOWNLOAD_FIX.format(what="depth model"))
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise load_error(source, "depth model", err) from err
    if type(config) not in MODEL_FOR_DEPTH_ESTIMATION_MAPPING:
        raise VidSynthError(
            f"{source} is a {config.model_type} model, not a depth-estimation one. Set depth_model to one that "
            "transformers' AutoModelForDepthEstimation loads, e.g. depth-anything/Depth-Anything-V2-Small-hf"
        )


def load_depth_estimator(source: str, device: torch.device, dtype: torch.dtype) -> tuple:
    """(model, image processor) of a depth-estimation model (hub id or folder), in ``dtype`` on ``device``."""
    require_model(source, "config.json", "depth model", DOWNLOAD_FIX.format(what="depth model"))
    try:
        processor = AutoImageProcessor.from_pretrained(source, backend="pil")
        model = AutoModelForDepthEstimation.from_pretrained(source)
    except (OSError, ValueError) as err:  # missing files, an unreachable hub, or not a depth model
        raise load_error(source, "depth model", err) from err
    return model.to(device, dtype).eval(), processor


@torch.no_grad()
def depth_maps(frames: np.ndarray, model: torch.nn.Module, processor) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 RGB -> depth maps (F, H, W, 3) uint8, near bright, each frame in [0, 255]."""
    num_frames, height, width = frames.shape[:3]
    maps = np.empty((num_frames, height, width, 3), np.uint8)
    parameter = next(model.parameters())
    for start in tqdm(range(0, num_frames, BATCH), desc="Depth maps", leave=False):
        chunk = list(frames[start : start + BATCH])
        inputs = processor(images=chunk, return_tensors="pt")
        output = model(pixel_values=inputs.pixel_values.to(parameter.device, parameter.dtype))
        output.predicted_depth = output.predicted_depth.float()  # resized in float32 below
        results = processor.post_process_depth_estimation(output, target_sizes=[(height, width)] * len(chunk))
        for i, result in enumerate(results):
            depth = result["predicted_depth"].cpu()  # (H, W)
            low, high = depth.min(), depth.max()
            scaled = (depth - low) / (high - low) if high > low else torch.zeros_like(depth)
            maps[start + i] = (scaled * 255).round().to(torch.uint8).numpy()[..., None]
    return maps
