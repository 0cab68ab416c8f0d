"""The name ``tiny``: offline models with random weights, usable wherever a model is named.

``pretrained_model_path: tiny`` (train), ``--base tiny`` (inference), ``clip_model: tiny`` and
``--clip-model tiny`` (experiments, evaluate), ``--controlnet tiny`` and ``--depth-model tiny`` (controls),
``--segment-model tiny`` and ``--segment-text-model tiny`` (regions: a tiny SAM 2 video model and a tiny CLIPSeg)
and ``--model tiny`` (animate: a tiny Stable Video Diffusion) run every stage with no download and no GPU:
for smoke runs, the demo and the web app. The pictures and scores are noise. Each kind is built once,
from seed 0, into one cache folder, ``<HF_HOME>/vidsynth-tiny/<kind>`` (``HF_HOME`` as huggingface_hub
reads it, ``~/.cache/huggingface`` by default), and reused by every later command.
"""

import logging
import os
from pathlib import Path

from huggingface_hub import constants

from vidsynth.atomic import atomic_path

logger = logging.getLogger(__name__)

TINY = "tiny"
KINDS = ("sd", "clip", "depth", "controlnet", "svd", "sam2-video", "clipseg")


def tiny_folder(kind: str) -> Path:
    """Where the tiny model of ``kind`` lives (``HF_HOME`` read now, so a changed environment is followed)."""
    if kind not in KINDS:
        raise ValueError(f"no tiny model of kind {kind!r}; kinds: {', '.join(KINDS)}")
    return Path(os.environ.get("HF_HOME") or constants.HF_HOME).expanduser().absolute() / "vidsynth-tiny" / kind


def _build(kind: str, path: Path) -> None:
    """Write the tiny model of ``kind`` into ``path`` (imports here: torch and diffusers load slowly)."""
    if kind == "sd":
        from vidsynth.testing.tiny_sd import build_tiny_sd

        build_tiny_sd(path, seed=0)
    elif kind == "clip":
        from vidsynth.testing.tiny_clip import build_tiny_clip

        build_tiny_clip(path, seed=0)
    elif kind == "svd":
        from vidsynth.testing.tiny_svd import build_tiny_svd

        build_tiny_svd(path, seed=0)
    elif kind == "depth":
        from vidsynth.testing.tiny_depth import build_tiny_depth

        build_tiny_depth(path, seed=0)
    elif kind == "sam2-video":
        from vidsynth.testing.tiny_segment import build_tiny_sam2_video

        build_tiny_sam2_video(path, seed=0)
    elif kind == "clipseg":
        from vidsynth.testing.tiny_segment import build_tiny_clipseg

        build_tiny_clipseg(path, seed=0)
    else:
        from vidsynth.testing.tiny_controlnet import build_tiny_controlnet
        from vidsynth.testing.tiny_sd import tiny_unet

        build_tiny_controlnet(path, tiny_unet(seed=0), seed=0)  # the tiny SD's UNet: same seed, same weights


def resolve_model(name: str, kind: str = "sd") -> str:
    """``name`` as given, or, for ``tiny``, the folder of the tiny ``kind`` model, built the first time."""
    if str(name) != TINY:
        return name
    folder = tiny_folder(kind)
    if not folder.is_dir():
        logger.info("Building the tiny %s model with random weights into %s (once)", kind, folder)
        try:
            with atomic_path(folder, folder=True) as partial:
                _build(kind, partial)
        except OSError:
            if not folder.is_dir():  # else another process finished it first: use theirs
                raise
    return str(folder)
