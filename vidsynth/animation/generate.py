"""Running the pipeline over the segments of a request, and how smooth each joint between segments is.

Each segment is one call of diffusers' ``StableVideoDiffusionPipeline`` with the request's settings:
the first from the still, each next from the previous segment's last frame (as written, uint8), whose
repeat is dropped. The noise of segment k is drawn on the CPU from ``seed + k``, so a seed gives the
same frames on every device.
"""

import numpy as np
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from vidsynth import events
from vidsynth.animation.request import AnimateRequest
from vidsynth.media.writers import to_uint8


def _segment(pipe: StableVideoDiffusionPipeline, request: AnimateRequest, still: Image.Image, k: int) -> np.ndarray:
    """The frames of segment ``k`` from ``still``: (f, H, W, 3) uint8."""
    config, segment = request.config, request.segments[k]

    def step_done(pipe, step: int, timestep, tensors: dict) -> dict:
        events.progress("sampling", step + 1, config.num_inference_steps, segment=k + 1)
        return tensors

    count = len(request.segments)
    label = f"Denoising segment {k + 1}/{count}" if count > 1 else "Denoising"
    # set_progress_bar_config replaces the settings: keep the caller's (e.g. disable), change the label
    pipe.set_progress_bar_config(**{"leave": False, **getattr(pipe, "_progress_bar_config", {}), "desc": label})
    frames = pipe(
        still,
        height=request.height,
        width=request.width,
        num_frames=segment.num_frames,
        num_inference_steps=config.num_inference_steps,
        min_guidance_scale=config.min_guidance_scale,
        max_guidance_scale=config.max_guidance_scale,
        fps=round(request.fps),  # the model was conditioned on whole frame rates
        motion_bucket_id=config.motion_bucket_id,
        noise_aug_strength=config.noise_aug_strength,
        decode_chunk_size=config.decode_chunk_size,
        generator=torch.Generator("cpu").manual_seed(segment.seed),
        output_type="np",
        callback_on_step_end=step_done,
    ).frames[0]  # (f, H, W, 3) float in [0, 1]
    return to_uint8(frames)


def generate(pipe: StableVideoDiffusionPipeline, request: AnimateRequest) -> np.ndarray:
    """Every segment's frames, joined: (request.num_frames, H, W, 3) uint8."""
    parts, still = [], request.still
    with events.stage("segments", len(request.segments)):
        for k, segment in enumerate(request.segments):
            frames = _segment(pipe, request, still, k)
            new = frames if k == 0 else frames[1:]  # after the first, a segment's first frame is the last one's
            parts.append(new[: segment.stop - segment.start])
            still = Image.fromarray(frames[-1])
            events.progress("segments", k + 1, len(request.segments))
    return np.concatenate(parts)


def joint_flicker(frames: np.ndarray, joints: list[int]) -> list[dict]:
    """Per joint (the index of the first frame after it): the change across it and its ratio to the usual change.

    The change between two frames is their mean absolute difference in [0, 1]; the usual change is the
    median over every other pair of consecutive frames. A ratio near 1 is a seamless joint; well above
    1 is a visible jump.
    """
    steps = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3)) / 255.0  # (F-1,)
    usual = float(np.median(np.delete(steps, [j - 1 for j in joints]))) if len(steps) > len(joints) else 0.0
    return [
        {"frame": j, "change": float(steps[j - 1]), "flicker": float(steps[j - 1]) / usual if usual > 0 else None}
        for j in joints
    ]
