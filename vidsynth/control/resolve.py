"""An edit's controls resolved before any model loads: each with its ControlNet, scale, map source and cache.

Everything is checked from configs and headers: the ControlNets' configs against the base UNet's
width, a control video against the span it must cover, the depth model's config (only when its maps
are not cached yet). Order: the ``controls`` (``--control``), then the ``control_videos``;
``controlnets`` and ``control_scales`` follow it.
"""

from pathlib import Path
from typing import Protocol

from diffusers import UNet2DConditionModel

from vidsynth.cache_keys import cache_file, fingerprint, span_key
from vidsynth.control.control_video import check_control_video
from vidsynth.control.controlnets import check_controlnet
from vidsynth.control.depth import check_depth_model
from vidsynth.control.spec import DEFAULT_CONTROLNETS, ControlSpec, local_copy
from vidsynth.errors import VidSynthError
from vidsynth.media.span import ClipSpan

_ORDER = "in order: the --control names, then the --control-video files"


class ControlOptions(Protocol):
    """An edit's structure-guidance options (an :class:`~vidsynth.config.inference.InferenceConfig`)."""

    controls: list[str]
    control_videos: list[str]
    controlnets: list[str]
    control_scales: list[float]
    canny_low_threshold: int
    canny_high_threshold: int
    depth_model: str
    dtype: str
    cache_dir: str | None
    run: str | None


def _unet_width(unet_root: str) -> int | None:
    """The base UNet's cross-attention width from its config (None when it cannot be read without loading)."""
    try:
        return UNet2DConditionModel.load_config(unet_root, subfolder="unet").get("cross_attention_dim")
    except (OSError, ValueError):  # a hub id not in the cache: the pipeline checks the width once loaded
        return None


def control_cache_path(
    options: ControlOptions, kind: str, source: str | None, span: ClipSpan, device_type: str
) -> Path:
    """``<cache>/control-<kind>-<hash>.npy``: maps keyed by kind, thresholds (canny) or model (depth), span and size."""
    if kind == "canny":
        extra = {"thresholds": [options.canny_low_threshold, options.canny_high_threshold]}
    else:  # a model's maps depend on its weights and the arithmetic they ran in
        extra = {"model": fingerprint(source), "dtype": options.dtype, "device": device_type}
    return cache_file(options.cache_dir, options.run, f"control-{kind}", {**span_key(span), **extra}, ".npy")


def _check_counts(options: ControlOptions, kinds: list[str]) -> None:
    if not kinds:
        if options.controlnets or options.control_scales:
            raise VidSynthError(
                "--controlnet or --control-scale was given without a control. Add --control canny|depth or "
                "--control-video FILE, or leave them out"
            )
        return
    if options.controlnets and len(options.controlnets) != len(kinds):
        raise VidSynthError(
            f"{len(options.controlnets)} --controlnet for {len(kinds)} control(s). Give one per control, {_ORDER} "
            f"(or none, for the defaults of canny and depth)"
        )
    if len(options.control_scales) not in (0, 1, len(kinds)):
        raise VidSynthError(
            f"{len(options.control_scales)} --control-scale for {len(kinds)} controls. Give one per control "
            f"({_ORDER}), one for all, or none (1.0 each)"
        )
    if "video" in kinds and not options.controlnets:
        raise VidSynthError(
            "a control video needs the ControlNet its maps are made for. Pass --controlnet with its hub id or "
            f"folder, one per control, {_ORDER}"
        )


def resolve_controls(
    options: ControlOptions, unet_root: str, span: ClipSpan, device_type: str
) -> tuple[ControlSpec, ...]:
    """The controls, each with its ControlNet (checked against the UNet of ``unet_root``) and scale, in order.

    ``span``: the frames the maps are made for; ``device_type``: where a depth model would run (part
    of its maps' cache key).
    """
    kinds = [*options.controls, *["video"] * len(options.control_videos)]
    _check_counts(options, kinds)
    if not kinds:
        return ()
    controlnets = [local_copy(ref) for ref in options.controlnets or [DEFAULT_CONTROLNETS[k] for k in kinds]]
    scales = options.control_scales or [1.0]
    scales = scales * len(kinds) if len(scales) == 1 else scales
    width = _unet_width(unet_root)
    videos = iter(options.control_videos)
    specs = []
    for kind, controlnet, scale in zip(kinds, controlnets, scales, strict=True):
        check_controlnet(controlnet, width)
        source = thresholds = cache = None
        if kind == "video":
            source = check_control_video(next(videos), span.info, span.frame_indices)
        else:
            source = local_copy(options.depth_model) if kind == "depth" else None
            cache = control_cache_path(options, kind, source, span, device_type)
            if kind == "canny":
                thresholds = (options.canny_low_threshold, options.canny_high_threshold)
            elif not cache.is_file():  # the model is needed only to make maps that are not cached yet
                check_depth_model(source)
        specs.append(ControlSpec(kind, controlnet, float(scale), source, thresholds, cache))
    return tuple(specs)
