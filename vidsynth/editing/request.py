"""An edit request resolved once: which model, which frames of which clip, where, on what hardware.

``inference.py`` (and the tests, and anything else that edits) turns an :class:`InferenceConfig` into
one :class:`EditRequest` with :func:`resolve_request`, before any model loads. Everything that can be
wrong with the request is found here, with the fix; everything below (loading, rendering, writing)
takes the resolved values and never re-derives them. The clip's header is read once, here.

Where the clip options come from, first wins: the config (flags, ``key=value``, YAML); the tuning
run's saved ``config.yaml`` (VidSynth's and the original Tune-A-Video's have the same ``train_data``);
the tuning defaults for frames (at most what the clip has) and stride, and the clip's own aspect ratio
for the size.
"""

import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from omegaconf import OmegaConf

from vidsynth.atomic import check_writable
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.train import TrainDataConfig
from vidsynth.control.control_video import check_control_video
from vidsynth.control.controlnets import check_controlnet
from vidsynth.control.depth import check_depth_model
from vidsynth.control.spec import DEFAULT_CONTROLNETS, ControlSpec, local_copy
from vidsynth.dtypes import torch_dtype
from vidsynth.editing.baseline import check_strength
from vidsynth.errors import VidSynthError
from vidsynth.media.video import Clip, VideoInfo, check_clip_request, probe_video, read_clip
from vidsynth.models.trainable import read_trained_metadata
from vidsynth.models.windows import check_windows
from vidsynth.pipelines.loading import ModelSource, is_tuneavideo_folder
from vidsynth.run_folder import CONFIG_FILE, RESULT_FILE
from vidsynth.testing import tiny_models

logger = logging.getLogger(__name__)

LONG_SIDE = 512  # default size: SD-1.x's training size on the clip's longer side
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class ClipSpan:
    """Which frames of which clip, at which size; ``info`` is the clip's header, read once."""

    info: VideoInfo
    num_frames: int
    width: int
    height: int
    start_frame: int
    stride: int
    window: int  # frames the UNet sees at once (spans longer than this go in overlapping windows)
    window_overlap: int

    @property
    def path(self) -> str:
        return self.info.path

    def read(self) -> Clip:
        """Decode the span: (F, 3, H, W) pixels in [-1, 1] with where they came from."""
        return read_clip(self.info, self.num_frames, self.width, self.height, self.start_frame, self.stride)

    @property
    def frame_indices(self) -> range:
        """The source frames that are edited."""
        return range(self.start_frame, self.start_frame + self.num_frames * self.stride, self.stride)


@dataclass(frozen=True)
class EditRequest:
    """Everything an edit needs, resolved and checked. ``config`` has every clip option filled in."""

    config: InferenceConfig
    model: ModelSource
    img2img_base: str | None  # the plain SD model of the per-frame baseline (img2img and compare only)
    clip: ClipSpan
    device: torch.device
    dtype: torch.dtype
    out: Path
    inversion_cache: Path | None  # where the inverted latents are cached (None: no inversion)
    controls: tuple[ControlSpec, ...] = ()  # structure guidance: ControlNets and where their maps come from

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
        return (
            f"Editing {clip.num_frames} frames of {Path(clip.path).name} ({start:.2f}-{end:.2f} s from frame "
            f"{clip.start_frame}, stride {clip.stride}: {fps / clip.stride:.4g} fps) at {clip.width}x{clip.height}, "
            f"{len(cfg.prompts)} prompt(s), {steps}, {cfg.method}{' + img2img' if cfg.compare else ''} on "
            f"{self.device.type} ({cfg.dtype}){windows}{guidance}"
        )


# ---------------------------------------------------------------- the model


def _existing_dir(path: str, what: str, fix: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise VidSynthError(f"{what} {folder.absolute()} does not exist or is not a folder. {fix}")
    return folder.absolute()


def check_base(base: str) -> str:
    """A local SD folder must have a unet/ folder; anything else must look like a hub id (checked when loaded)."""
    base = tiny_models.resolve_model(base)
    local = Path(base).expanduser()
    if local.exists():
        if not (local / "unet").is_dir():
            raise VidSynthError(f"base model {local} has no unet/ folder. Point --base at an SD-1.x model folder")
        return str(local.absolute())
    if _HUB_ID.fullmatch(base) and not base.startswith("."):
        return base
    raise VidSynthError(
        f"base model {base} not found. Pass --base with the SD-1.x folder (./download_models.sh fetches SD-1.4)"
    )


def _local_path(path: str, folder: Path) -> str:
    """A path a saved config names: as it is, else relative to the config's folder (runs can move)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists() or not (folder / given).exists():
        return str(given)
    return str(folder / given)


def _tuned_clip(folder: Path) -> dict:
    """``train_data`` of the tuning config saved in ``folder`` (VidSynth's or the original's), or {}."""
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        return {}
    data = OmegaConf.to_container(OmegaConf.load(config_file)).get("train_data") or {}
    if data.get("video_path"):
        data["video_path"] = _local_path(data["video_path"], folder)
    return data


def resolve_model(config: InferenceConfig) -> tuple[ModelSource, dict]:
    """The model to load, and the ``train_data`` it was tuned on (defaults for the clip options)."""
    if config.run and config.pipeline:
        raise VidSynthError("both --run and --pipeline were given. Pass only one of them")
    if config.run:
        run = _existing_dir(config.run, "tuning result folder", "Pass the output_dir of a finished train.py run")
        trained = run / RESULT_FILE
        if trained.is_file():
            base = config.base or read_trained_metadata(trained)["base_model"]
            if (run / "pipeline" / "model_index.json").is_file() and not config.base:
                return ModelSource("pipeline", str(run / "pipeline"), base), _tuned_clip(run)
            return ModelSource("trained", str(trained), check_base(_local_path(base, run))), _tuned_clip(run)
        if is_tuneavideo_folder(run):
            return ModelSource("tuneavideo", str(run)), _tuned_clip(run)
        raise VidSynthError(
            f"{run} is not a tuning result: it has no {RESULT_FILE}. Pass the output_dir of a finished train.py "
            "run, or a pipeline folder with --pipeline"
        )
    if config.pipeline:
        folder = _existing_dir(config.pipeline, "pipeline folder", "Pass a folder with model_index.json")
        if is_tuneavideo_folder(folder):
            return ModelSource("tuneavideo", str(folder)), _tuned_clip(folder)
        if not (folder / "model_index.json").is_file():
            raise VidSynthError(f"{folder} has no model_index.json. Pass a folder written by save_pretrained")
        return ModelSource("pipeline", str(folder)), {}
    if config.base:
        return ModelSource("base", check_base(config.base)), {}
    raise VidSynthError("no model given. Pass --run (a train.py result), --pipeline FOLDER, or --base with --video")


def resolve_img2img_base(config: InferenceConfig, source: ModelSource) -> str:
    """The plain SD-1.x model the per-frame baseline runs: ``--base``, else the one the tuning run started from."""
    check_strength(config.strength, config.num_inference_steps)
    base = config.base or source.base
    if base is None:
        raise VidSynthError(
            f"the img2img baseline needs a plain SD-1.x model, and {source.path} is a full video pipeline. "
            "Pass --base with the SD-1.x folder it was made from"
        )
    return check_base(base)


# ---------------------------------------------------------------- the clip


def default_size(info: VideoInfo) -> tuple[int, int]:
    """The clip's aspect ratio with :data:`LONG_SIDE` on its longer side, both multiples of 8."""
    scale = LONG_SIDE / max(info.width, info.height)
    return tuple(max(8, round(side * scale / 8) * 8) for side in (info.width, info.height))


def _frame_at(seconds: float, info: VideoInfo) -> int:
    """Index of the first frame shown at or after ``seconds``."""
    return math.ceil(seconds * info.fps - 1e-6)


def _span_bounds(config: InferenceConfig, tuned: dict, info: VideoInfo) -> tuple[int, int]:
    """[start, end) source-frame indices of the span: by time, by frame, or the tuning run's span."""
    duration = info.num_frames / info.fps
    if config.start is not None:
        if config.start >= duration:
            raise VidSynthError(
                f"--start {config.start:g} s is outside {Path(info.path).name}, which lasts {duration:.3f} s. "
                f"Start before {duration:.3f} s"
            )
        start = _frame_at(config.start, info)
    else:
        start = config.start_frame if config.start_frame is not None else tuned.get("sample_start_idx") or 0
    if config.end is not None:
        if config.end > duration + 1 / info.fps:
            raise VidSynthError(
                f"--end {config.end:g} s is outside {Path(info.path).name}, which lasts {duration:.3f} s. "
                f"End at {duration:.3f} s at the latest (or leave --end out for the clip's end)"
            )
        end = min(_frame_at(config.end, info), info.num_frames)
    else:
        end = tuned.get("sample_end_idx") or info.num_frames
    if end <= start:
        raise VidSynthError(
            f"the span ends (frame {end}, {end / info.fps:.3f} s) before it starts (frame {start}, "
            f"{start / info.fps:.3f} s). Give an end after the start"
        )
    return start, end


def resolve_clip(config: InferenceConfig, tuned: dict) -> ClipSpan:
    """Clip options: the config's, else the tuning run's, else the defaults; checked on the file's header.

    Frames, unasked for: every frame of the span when a time span was asked for or the run tuned on
    random windows of its span; else the run's ``n_sample_frames`` (the original's one window); else
    the tuning default, cut to what the clip has.
    """
    defaults = TrainDataConfig()
    path = config.video or tuned.get("video_path")
    if not path:
        raise VidSynthError("no clip to edit: this model does not name one. Pass --video with the clip")
    info = probe_video(path)

    def pick(value: int | None, tuned_key: str, default: int) -> int:
        return value if value is not None else (tuned.get(tuned_key) or default)

    width, height = default_size(info)
    window = config.window or tuned.get("n_sample_frames") or defaults.n_sample_frames
    stride = pick(config.stride, "sample_frame_rate", defaults.sample_frame_rate)
    start, end = _span_bounds(config, tuned, info)
    available = len(range(start, end, stride))
    whole_span = config.start is not None or config.end is not None or tuned.get("window_sampling") == "random"
    if config.num_frames == "all" or (config.num_frames is None and whole_span):
        num_frames = available
    else:
        num_frames = pick(config.num_frames, "n_sample_frames", min(defaults.n_sample_frames, max(available, 1)))
    if num_frames > available and end < info.num_frames:  # a span to the clip's end: checked below, with the fix
        raise VidSynthError(
            f"the span (frames {start} to {end - 1}) at stride {stride} has {available} frames, but {num_frames} "
            f"were asked. Lower --frames to {available}, or use --frames all"
        )
    span = ClipSpan(
        info=info,
        num_frames=num_frames,
        width=pick(config.width, "width", width),
        height=pick(config.height, "height", height),
        start_frame=start,
        stride=stride,
        window=window,
        window_overlap=min(4, window // 4) if config.window_overlap is None else config.window_overlap,
    )
    check_clip_request(info, span.num_frames, span.width, span.height, span.start_frame, span.stride)
    if config.window is not None and config.window > span.num_frames:
        raise VidSynthError(
            f"window {config.window} is larger than the span's {span.num_frames} frames. Use a window of at most "
            f"{span.num_frames} frames, or leave window out"
        )
    check_windows(max(span.num_frames, span.window), span.window, span.window_overlap)
    return span


# ---------------------------------------------------------------- output, hardware, cache


def resolve_out(config: InferenceConfig) -> Path:
    """The output folder: new, or empty. Default: a time-stamped folder under the run (or outputs/edits)."""
    if config.out:
        out = Path(config.out).expanduser().absolute()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise VidSynthError(f"{out} already holds files; results are never overwritten. Pass another --out")
        check_writable(out, "Pass another --out")
        return out
    root = Path(config.run).absolute() / "edits" if config.run else Path("outputs/edits").absolute()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = root / stamp, 1
    while out.exists():
        n += 1
        out = root / f"{stamp}-{n}"
    return out


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise VidSynthError(f"unknown device {name!r}. Use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VidSynthError(f"device {name} asked but torch sees no CUDA GPU. Use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VidSynthError(f"device {name} asked but MPS is not available. Use --device cpu")
    return device


def _fingerprint(ref: str) -> list:
    """What identifies a model or clip for the cache: (name, size, mtime) of its files, or a hub id."""
    path = Path(ref)
    if not path.exists():
        return [ref]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _cache_file(config: InferenceConfig, name: str, key: dict, suffix: str) -> Path:
    """``<cache>/<name>-<hash of key><suffix>``; the cache is ``cache_dir``, else the run's .cache, else the user's."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    if config.cache_dir:
        cache_dir = Path(config.cache_dir).expanduser()
    elif config.run:
        cache_dir = Path(config.run) / ".cache"
    else:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidsynth"
    return cache_dir.absolute() / f"{name}-{digest}{suffix}"


def inversion_cache_path(config: InferenceConfig, model: ModelSource, clip: ClipSpan, device: torch.device) -> Path:
    """``<cache>/inversion-<hash>.pt``, keyed by model, clip span, size, steps, dtype and device type.

    The inversion runs without ControlNets, so the controls are not part of the key.
    """
    key = {
        "model": [_fingerprint(ref) for ref in model.files],
        "clip": [_fingerprint(clip.path), clip.start_frame, clip.stride],
        "frames": clip.num_frames,
        "windows": [clip.window, clip.window_overlap] if clip.num_frames > clip.window else None,
        "size": [clip.width, clip.height],
        "steps": config.inversion_steps,
        "dtype": config.dtype,
        "device": device.type,
    }
    return _cache_file(config, "inversion", key, ".pt")


def control_cache_path(
    config: InferenceConfig, kind: str, source: str | None, clip: ClipSpan, device: torch.device
) -> Path:
    """``<cache>/control-<kind>-<hash>.npy``: maps keyed by kind, thresholds (canny) or model (depth), span and size."""
    key = {
        "clip": [_fingerprint(clip.path), clip.start_frame, clip.stride],
        "frames": clip.num_frames,
        "size": [clip.width, clip.height],
    }
    if kind == "canny":
        key["thresholds"] = [config.canny_low_threshold, config.canny_high_threshold]
    else:  # a model's maps depend on its weights and the arithmetic they ran in
        key.update(model=_fingerprint(source), dtype=config.dtype, device=device.type)
    return _cache_file(config, f"control-{kind}", key, ".npy")


# ---------------------------------------------------------------- structure guidance


def _unet_width(model: ModelSource) -> int | None:
    """The base UNet's cross-attention width from its config (None when it cannot be read without loading)."""
    root = model.base if model.kind == "trained" else model.path
    try:
        return UNet2DConditionModel.load_config(root, subfolder="unet").get("cross_attention_dim")
    except (OSError, ValueError):  # a hub id not in the cache: the pipeline checks the width once loaded
        return None


def resolve_controls(
    config: InferenceConfig, model: ModelSource, clip: ClipSpan, device: torch.device
) -> tuple[ControlSpec, ...]:
    """The controls, each with its ControlNet (checked against the base model) and scale, in ``controls`` order.

    Order: the ``controls`` (``--control``), then the ``control_videos``; ``controlnets`` and
    ``control_scales`` follow it. Everything is checked from configs and headers: no model loads.
    """
    kinds = [*config.controls, *["video"] * len(config.control_videos)]
    order = "in order: the --control names, then the --control-video files"
    if not kinds:
        if config.controlnets or config.control_scales:
            raise VidSynthError(
                "--controlnet or --control-scale was given without a control. Add --control canny|depth or "
                "--control-video FILE, or leave them out"
            )
        return ()
    if config.controlnets and len(config.controlnets) != len(kinds):
        raise VidSynthError(
            f"{len(config.controlnets)} --controlnet for {len(kinds)} control(s). Give one per control, {order} "
            f"(or none, for the defaults of canny and depth)"
        )
    if len(config.control_scales) not in (0, 1, len(kinds)):
        raise VidSynthError(
            f"{len(config.control_scales)} --control-scale for {len(kinds)} controls. Give one per control ({order}), "
            "one for all, or none (1.0 each)"
        )
    if "video" in kinds and not config.controlnets:
        raise VidSynthError(
            "a control video needs the ControlNet its maps are made for. Pass --controlnet with its hub id or "
            f"folder, one per control, {order}"
        )
    controlnets = [local_copy(ref) for ref in config.controlnets or [DEFAULT_CONTROLNETS[k] for k in kinds]]
    scales = config.control_scales or [1.0]
    scales = scales * len(kinds) if len(scales) == 1 else scales
    width = _unet_width(model)
    videos = iter(config.control_videos)
    specs = []
    for kind, controlnet, scale in zip(kinds, controlnets, scales, strict=True):
        check_controlnet(controlnet, width)
        source = thresholds = cache = None
        if kind == "video":
            source = check_control_video(next(videos), clip.info, clip.frame_indices)
        else:
            source = local_copy(config.depth_model, "depth") if kind == "depth" else None
            cache = control_cache_path(config, kind, source, clip, device)
            if kind == "canny":
                thresholds = (config.canny_low_threshold, config.canny_high_threshold)
            elif not cache.is_file():  # the model is needed only to make maps that are not cached yet
                check_depth_model(source)
        specs.append(ControlSpec(kind, controlnet, float(scale), source, thresholds, cache))
    return tuple(specs)


# ---------------------------------------------------------------- the whole request


def check_prompts(prompts: list[str]) -> None:
    if not prompts:
        raise VidSynthError('no prompt given. Pass --prompt "..." (repeat it for several edits)')
    for i, prompt in enumerate(prompts, start=1):
        if not prompt.strip():
            raise VidSynthError(f'prompt {i} is empty. Describe the edit, e.g. --prompt "a panda is surfing"')


def resolve_request(config: InferenceConfig) -> EditRequest:
    """Check and resolve ``config`` into an :class:`EditRequest`; no model is loaded, nothing is written."""
    check_prompts(config.prompts)
    model, tuned = resolve_model(config)
    baseline = config.method == "img2img" or config.compare
    img2img_base = resolve_img2img_base(config, model) if baseline else None
    clip = resolve_clip(config, tuned)
    out = resolve_out(config)
    device = resolve_device(config.device)
    config = dataclasses.replace(
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
    )
    controls = resolve_controls(config, model, clip, device)
    if controls:  # the saved config names what was used: one ControlNet and one scale per control
        config = dataclasses.replace(
            config, controlnets=[c.controlnet for c in controls], control_scales=[c.scale for c in controls]
        )
    tuned_method = config.method == "tuneavideo" or config.compare
    cache = inversion_cache_path(config, model, clip, device) if config.inversion and tuned_method else None
    return EditRequest(config, model, img2img_base, clip, device, torch_dtype(config.dtype), out, cache, controls)
