"""Animations in the evaluate command: an image-to-video MP4's sidecar, its input image, its row of metrics.

An animation (``python -m vidsynth.animate``, sidecar ``"kind": "animation"``) has no prompt, so its
frames are scored against the image it was made from (image alignment, in place of text alignment),
and, unless it extends a clip, no source video, so its flicker is its own motion; an extended clip's
is the generated frames' change against the clip's own frames', both read from the output MP4
(:func:`~vidsynth.evaluation.metrics.animation_flicker`). The row kind says which: ``animation`` or
``extension``.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.evaluation.metrics import (
    ClipScorer,
    animation_flicker,
    frame_consistency_all_pairs,
    frame_consistency_consecutive,
    image_alignment,
)
from vidsynth.media.still import read_still
from vidsynth.media.video import read_frames

METHOD = "svd"  # the method column of an animation's row: Stable Video Diffusion made it
_RERUN = "Re-run python -m vidsynth.animate to rewrite it."


def load_animation_sidecar(sidecar: Path, meta: dict) -> dict:
    """What evaluation needs from an animation's sidecar (already parsed JSON), checked."""
    try:
        image, clip = meta["image"], meta.get("source")
        return {
            "kind": "extension" if clip else "animation",
            "width": int(meta["width"]),
            "height": int(meta["height"]),
            "num_frames": int(meta["num_frames"]),
            "image_path": Path(image["path"]),
            "image_frame": None if image["frame"] is None else int(image["frame"]),
            "clip_frames": int(clip["num_frames"]) if clip else 0,
        }
    except (KeyError, TypeError, ValueError) as err:
        raise VidSynthError(
            f"Sidecar {sidecar} is unreadable or incomplete ({type(err).__name__}: {err}). {_RERUN}"
        ) from err


def read_input_image(meta: dict) -> np.ndarray:
    """The still that was animated, uint8 (H, W, 3) at the animation's size.

    Stretched to that size as the image-to-video pipeline resizes it (a still with PIL's Lanczos filter, a
    video frame by the decoder), so the frames are compared with what the model was given.
    """
    path, size = meta["image_path"], (meta["width"], meta["height"])
    if not path.is_file():
        raise VidSynthError(f"Input image {path} of the animation is missing. Put it back at that path. {_RERUN}")
    if meta["image_frame"] is not None:
        return read_frames(path, [meta["image_frame"]], *size)[0]
    return np.asarray(read_still(path).resize(size, Image.LANCZOS))  # transparency flattened as animate did


def read_animation(video: Path, meta: dict) -> np.ndarray:
    """The animation's frames, uint8 (F, H, W, 3), checked against its sidecar."""
    frames = iio.imread(video, index=None, plugin="FFMPEG")  # (F, H, W, 3)
    if len(frames) < 2:
        raise VidSynthError(
            f"{video} has {len(frames)} frame; frame consistency and flicker compare frames, so they need at "
            "least 2. Evaluate animations of 2 or more frames."
        )
    if len(frames) != meta["num_frames"] or frames.shape[1:3] != (meta["height"], meta["width"]):
        raise VidSynthError(
            f"{video} has {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]} but its sidecar says "
            f"{meta['num_frames']} frames of {meta['width']}x{meta['height']}. {_RERUN}"
        )
    return frames


def animation_row(video: Path, label: str, meta: dict, scorer: ClipScorer) -> dict:
    """The row of one animation: the edits' keys, no prompt or text alignment, image alignment instead."""
    frames = read_animation(video, meta)  # (F, H, W, 3)
    frame_emb = scorer.image_embeddings(frames)  # (F, D)
    image_emb = scorer.image_embeddings(read_input_image(meta)[None])[0]  # (D,)
    return {
        "clip": label,
        "video": str(video.resolve()),
        "kind": meta["kind"],
        "method": METHOD,
        "prompt": None,
        "frames": len(frames),
        "consistency_all_pairs": frame_consistency_all_pairs(frame_emb),
        "consistency_consecutive": frame_consistency_consecutive(frame_emb),
        "text_alignment": None,
        "image_alignment": image_alignment(frame_emb, image_emb),
        "flicker": animation_flicker(frames, meta["clip_frames"]),
    }
