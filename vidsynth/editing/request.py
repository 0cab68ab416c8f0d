"""An edit request resolved once: which model, which frames of which clip, where, on what hardware.

``inference.py`` (and the tests, and anything else that edits) turns an :class:`InferenceConfig` into
one :class:`EditRequest` with :func:`resolve_request`, before any model loads. Everything that can be
wrong with the request is found then, with the fix; everything below (loading, rendering, writing)
takes the resolved values and never re-derives them. Each part resolves its own piece and this
module composes them, one call each:

* the model (``--run``, ``--pipeline``, ``--base``) and what it was tuned on: :mod:`vidsynth.pipelines.source`;
* the span of the clip (the config's options, else the tuning run's ``train_data``, else the tuning
  defaults and the clip's own aspect ratio), its header read once: :mod:`vidsynth.media.span`;
* the UNet's windows over the span: :mod:`vidsynth.models.windows`;
* the output folder (new or empty; default ``<run>/edits/<time>``, else ``outputs/edits/<time>``):
  :mod:`vidsynth.workspace`; the device: :mod:`vidsynth.device`;
* the controls and their ControlNets: :mod:`vidsynth.control.resolve`;
* the region an edit is limited to (``--region``, ``--segment``, ``--mask-video``) and what is done
  with it: :mod:`vidsynth.config.region`; the stacked LoRAs: :mod:`vidsynth.models.lora_stack`;
* where the inverted latents and the region's masks are cached: :mod:`vidsynth.cache_keys`.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from vidsynth.cache_keys import fingerprint, inversion_cache_path, mask_cache_path
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.region import RegionSpec, resolve_region
from vidsynth.config.train import TrainDataConfig
from vidsynth.control.resolve import resolve_controls
from vidsynth.control.spec import ControlSpec
from vidsynth.device import resolve_device
from vidsynth.dtypes import torch_dtype
from vidsynth.editing.baseline import check_strength
from vidsynth.errors import VidSynthError
from vidsynth.media.span import ClipSpan, resolve_span
from vidsynth.models.lora_stack import StyleLora
from vidsynth.models.windows import check_windows
from vidsynth.pipelines.loading import ModelSource
from vidsynth.pipelines.source import resolve_model_source
from vidsynth.workspace import OUTPUTS, new_output_folder

TUNING_DEFAULTS = TrainDataConfig()  # frames and stride of a clip that no tuning run names


@dataclass(frozen=True)
class EditRequest:
    """Everything an edit needs, resolved and checked. ``config`` has every clip option filled in."""

    config: InferenceConfig
    model: ModelSource
    img2img_base: str | None  # the plain SD model of the per-frame baseline (img2img and compare only)
    clip: ClipSpan
    device: torch.device
    out: Path
    inversion_cache: Path | None  # where the inverted latents are cached (None: no inversion)
    controls: tuple[ControlSpec, ...] = ()  # structure guidance: ControlNets and where their maps come from
    loras: tuple[StyleLora, ...] = ()  # community LoRAs stacked on the model, each with its scale
    region: RegionSpec | None = None  # the part of the frame the edit is limited to

    @property
    def dtype(self) -> torch.dtype:
        return torch_dtype(self.config.dtype)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods to render, in the order they run: the img2img baseline, then Tune-A-Video."""
        cfg = self.config
        return tuple(m for m in ("img2img", "tuneavideo") if cfg.method == m or cfg.compare)

    def describe(self) -> str:
        """One line saying what is about to run, before the long work starts."""
        cfg, clip = self.config, self.clip
        steps = f"{cfg.num_inference_steps} sampling steps"
        if cfg.inversion and cfg.method == "tuneavideo":
            steps = f"{cfg.inversion_steps} inversion + {steps}"
        fps = clip.info.fps
        start, end = clip.start_frame / fps, (clip.start_frame + clip.num_frames * clip.stride) / fps
        windows = ""
        if clip.num_frames > clip.window and cfg.method == "tuneavideo":
            windows = f", in windows of {clip.window} frames overlapping by {clip.window_overlap}"
        guides = " + ".join(f"{c.label} (scale {c.scale:g})" for c in self.controls)
        guidance = f", guided by {guides}" if guides else ""
        if self.loras:
            guidance += ", with LoRA " + " + ".join(f"{Path(s.ref).name} (scale {s.scale:g})" for s in self.loras)
        if self.region is not None:
            what = "a new background" if self.region.background is not None else f"the edit {self.region.edit}"
            guidance += f", {what} of a region from {self.region.source} ({self.region.text or 'file'})"
        return (
            f"Editing {clip.num_frames} frames of {Path(clip.path).name} ({start:.2f}-{end:.2f} s from frame "
            f"{clip.start_frame}, stride {clip.stride}: {fps / clip.stride:.4g} fps) at {clip.width}x{clip.height}, "
            f"{len(cfg.prompts)} prompt(s), {steps}, {cfg.method}{' + img2img' if cfg.compare else ''} on "
            f"{self.device.type} ({cfg.dtype}){windows}{guidance}"
        )


def check_prompts(prompts: list[str]) -> None:
    if not prompts:
        raise VidSynthError('no prompt given. Pass --prompt "..." (repeat it for several edits)')
    for i, prompt in enumerate(prompts, start=1):
        if not prompt.strip():
            raise VidSynthError(f'prompt {i} is empty. Describe the edit, e.g. --prompt "a panda is surfing"')


def resolve_request(config: InferenceConfig) -> EditRequest:
    """Check and resolve ``config`` into an :class:`EditRequest`; no model is loaded, nothing is written.

    Each piece is resolved once, by the part that owns it, in this order; the saved config then names
    every resolved value (the span, the output folder, the device, one ControlNet and scale per control).
    """
    if config.background_prompt is not None:
        if config.prompts:
            raise VidSynthError("--background-prompt is the edit's prompt. Leave out --prompt, or use --edit-outside")
        config = dataclasses.replace(config, prompts=[config.background_prompt])
    check_prompts(config.prompts)
    baseline = config.method == "img2img" or config.compare
    if baseline:
        check_strength(config.strength, config.num_inference_steps)
    model = resolve_model_source(config.run, config.pipeline, config.base, img2img=baseline)
    clip = resolve_span(config, model.tuned_clip, TUNING_DEFAULTS.n_sample_frames, TUNING_DEFAULTS.sample_frame_rate)
    out = new_output_folder(config.out, Path(config.run) / "edits" if config.run else OUTPUTS / "edits")
    check_windows(max(clip.num_frames, clip.window), clip.window, clip.window_overlap)
    device = resolve_device(config.device)
    controls = resolve_controls(config, model.source.unet_root, clip, device.type)
    region = resolve_region(config, model.tuned_clip.get("prompt"), clip)
    loras = tuple(StyleLora.parse(text) for text in config.loras)
    lora_key = None  # the LoRAs fused into the UNet, when not the default: part of the inversion's and masks' keys
    if loras or config.lora_scale != 1.0:
        lora_key = {"scale": config.lora_scale, "styles": [[fingerprint(s.ref), s.scale] for s in loras]}
    cache = None
    if config.inversion and (config.method == "tuneavideo" or config.compare):
        cache = inversion_cache_path(
            config.cache_dir,
            config.run,
            model.source.files,
            clip,
            config.inversion_steps,
            config.dtype,
            device.type,
            lora_key,
        )
    if region is not None and region.source != "mask-video":  # the masks a model makes are cached
        masks = mask_cache_path(
            config.cache_dir,
            config.run,
            clip,
            region,
            config.dtype,
            device.type,
            model.source.files,
            config.inversion_steps,
            lora_key,
        )
        region = dataclasses.replace(region, cache=masks)
    resolved = dataclasses.replace(
        config,
        video=clip.path,
        start=None,
        end=None,
        num_frames=clip.num_frames,
        width=clip.width,
        height=clip.height,
        start_frame=clip.start_frame,
        stride=clip.stride,
        window=clip.window,
        window_overlap=clip.window_overlap,
        out=str(out),
        device=str(device),
        controlnets=[c.controlnet for c in controls],
        control_scales=[c.scale for c in controls],
        loras=[style.spec for style in loras],
        background_prompt=None,  # it is the prompt now: an edit outside the region
        region_edit=region.edit if region is not None and region.background is None else None,
    )
    return EditRequest(resolved, model.source, model.img2img_base, clip, device, out, cache, controls, loras, region)
