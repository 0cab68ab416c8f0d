"""Everything about a tuning request that can be checked before a model loads.

Loading SD-1.x takes a while and tuning takes longer; a mistyped path, a clip that is too short or
a frame size that is not a multiple of 8 must fail in a second, with the fix, and leave nothing
behind. These checks read only JSON configs, the clip's header and first frame, and build the UNet
on the meta device (no weights) to check the trainable module names.
"""

import re
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from vidsynth.config.train import TrainConfig, TrainDataConfig
from vidsynth.errors import VidSynthError
from vidsynth.media.video import VideoInfo, check_clip_request
from vidsynth.models.trainable import trainable_parameter_names
from vidsynth.models.unet import VideoUNet
from vidsynth.testing.tiny_models import resolve_model
from vidsynth.training.span import TuningSpan

MODEL_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def _load_part_config(model: str, part: type, subfolder: str) -> dict:
    try:
        return dict(part.load_config(model, subfolder=subfolder))
    except (OSError, ValueError) as err:
        raise VidSynthError(
            f"cannot read the {subfolder} config of pretrained_model_path {model!r} ({str(err).splitlines()[0]}). "
            "Download the model (download_models.sh) or point pretrained_model_path at a local SD-1.x folder"
        ) from err


def check_model(model: str) -> dict:
    """The base model's UNet config. A local folder must have the five SD-1.x parts; anything else
    must look like a hub id; ``tiny`` is the offline tiny model (built here the first time).

    Frame sizes need no check against the model: any multiple of 8 (the VAE's downsampling, checked
    with the clip) works, because diffusers' UNet upsamples to the skip connections' sizes where its
    own downsampling meets an odd latent size (432 px: latents 54 -> 27 -> 14 -> 7 and back).
    """
    model = resolve_model(model)
    path = Path(model)
    if path.exists():
        missing = [part for part in MODEL_PARTS if not (path / part).is_dir()]
        if missing:
            raise VidSynthError(
                f"pretrained_model_path {path} is not an SD-1.x model folder: it has no {', '.join(missing)} "
                "subfolder. Point it at a diffusers folder such as ./checkpoints/stable-diffusion-v1-4"
            )
    elif not _HUB_ID.fullmatch(model) or model.startswith("."):
        raise VidSynthError(
            f"pretrained_model_path {model} does not exist. Download the model (download_models.sh) "
            "or point pretrained_model_path at a local SD-1.x folder"
        )
    return _load_part_config(model, UNet2DConditionModel, "unet")


def check_trainable_modules(unet_config: dict, cfg: TrainConfig) -> int:
    """Build the video UNet without weights and resolve ``trainable_modules``; returns the parameter count."""
    with torch.device("meta"):
        unet = VideoUNet.from_config(
            unet_config, frame_norm=cfg.frame_norm, temporal_out_bias_init=cfg.temporal_out_bias_init
        )
    names = set(trainable_parameter_names(unet, cfg.trainable_modules))
    return sum(param.numel() for name, param in unet.named_parameters() if name in names)


def validation_notes(cfg: TrainConfig) -> list[str]:
    """Validation edits the tuning clip itself, so they have its frames and size; say which keys that overrides."""
    val, data = cfg.validation_data, cfg.train_data
    if not val.prompts:
        return []
    return [
        f"validation_data.{key} is {got} but the edits have the clip's {want} (train_data.{source}); using {want}"
        for key, got, want, source in (
            ("video_length", val.video_length, data.n_sample_frames, "n_sample_frames"),
            ("width", val.width, data.width, "width"),
            ("height", val.height, data.height, "height"),
        )
        if got != want
    ]


def check_span(info: VideoInfo, data: TrainDataConfig) -> TuningSpan:
    """The span ends inside the clip, after its start, and holds a window of ``n_sample_frames``.

    Runs after :func:`~vidsynth.media.video.check_clip_request`, which has found the start inside the clip
    and a window's frames between it and the clip's end (the span when ``sample_end_idx`` is null).
    """
    span = TuningSpan.of(data, info.num_frames)
    start, end, stride, clip_frames = span.frames.start, span.frames.stop, span.frames.step, info.num_frames
    if end > clip_frames:
        raise VidSynthError(
            f"train_data.sample_end_idx is {end} but {info.path} has {clip_frames} frames. "
            f"Set sample_end_idx={clip_frames} or less, or null for the clip's end"
        )
    if end <= start:
        raise VidSynthError(
            f"train_data.sample_end_idx ({end}) is not after sample_start_idx ({start}), so the span has no frames. "
            f"Set sample_end_idx between {start + 1} and {clip_frames}, or null for the clip's end"
        )
    if len(span.frames) < span.window:
        fixes = [f"lower train_data.n_sample_frames to {len(span.frames)}"]
        if span.window > 1 and (max_stride := (end - 1 - start) // (span.window - 1)) >= 1:
            fixes.append(f"lower sample_frame_rate to {max_stride}")
        if end < clip_frames:
            fixes.append(f"raise sample_end_idx (up to {clip_frames}, or null for the clip's end)")
        raise VidSynthError(
            f"the span, frames {start} to {end} (exclusive) at stride {stride}, has {len(span.frames)} frames, "
            f"fewer than the window of n_sample_frames={span.window}. Fix: {', or '.join(fixes)}"
        )
    return span


def check_request(cfg: TrainConfig) -> tuple[VideoInfo, TuningSpan, int]:
    """All checks that need no model weights; returns the clip's info, the span and the trainable parameter count."""
    unet_config = check_model(cfg.pretrained_model_path)
    data = cfg.train_data
    info = check_clip_request(
        data.video_path, data.n_sample_frames, data.width, data.height, data.sample_start_idx, data.sample_frame_rate
    )
    return info, check_span(info, data), check_trainable_modules(unet_config, cfg)
