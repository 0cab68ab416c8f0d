"""Edit a clip with new prompts: one MP4 per prompt (with the source's sound) and a GIF grid.

    python inference.py --run outputs/man-skiing --prompt "spider man is skiing on the beach, cartoon style"
    python inference.py --base checkpoints/stable-diffusion-v1-4 --video clip.mp4 --prompt "..."   # zero-shot
    python inference.py --pipeline path/to/tuneavideo-pipeline --video clip.mp4 --prompt "..."
    python inference.py --method img2img --base checkpoints/stable-diffusion-v1-4 --video clip.mp4 --prompt "..."
    python inference.py --compare --run outputs/man-skiing --prompt "..."   # source | img2img | tuned

``--run`` is the output folder of ``train.py`` (the trained parameters plus the base model and clip
they name) or a folder saved by the original Tune-A-Video; ``--pipeline`` a full pipeline folder.
Every option is a key of :class:`vidsynth.config.inference.InferenceConfig`; ``--profile NAME``
(``configs/NAME.yaml``), ``--config FILE`` and trailing ``key=value`` entries set them in layers,
explicit flags last. Everything is checked before a model loads; the results appear in the output
folder only once all of them are written. The DDIM-inverted clip is cached on disk, so a second
run with new prompts skips the inversion.

``--method img2img`` runs the per-frame Stable Diffusion img2img baseline (``vidsynth.baseline``) on
the same clip with the same settings and writes the same files; ``--compare`` runs both methods and
adds one side-by-side GIF and MP4 per prompt (each method's own files go to ``img2img/`` and
``tuneavideo/`` in the output folder).
"""

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from postprocess.add_audio import add_audio
from vidsynth.baseline import check_strength, load_img2img_pipeline, render_img2img
from vidsynth.cli import run_main
from vidsynth.config import load_config, save_config
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.train import TrainDataConfig
from vidsynth.editing import render_edits, source_video
from vidsynth.errors import VidSynthError
from vidsynth.media import write_gif_grid, write_grid_video, write_json, write_video
from vidsynth.models.trainable import read_trained_metadata
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.video import Clip, check_clip_request, probe_video, read_clip

logger = logging.getLogger("inference")

PROFILES_DIR = Path(__file__).resolve().parent / "configs"
TRAINED_FILE = "tuned_unet.safetensors"  # written by train.py into its output_dir
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class ModelSource:
    """Which pipeline to build: ``kind`` is trained (base + trained file), pipeline, tuneavideo or base."""

    kind: str
    path: str  # the trained file, the pipeline folder, or the base model
    base: str | None = None  # the base model a tuning run started from (its trained file or saved pipeline)

    @property
    def name(self) -> str:
        """How sidecars name the model."""
        return f"{self.base} + {self.path}" if self.kind == "trained" else self.path


@dataclass(frozen=True)
class ClipRequest:
    path: str
    frames: int
    width: int
    height: int
    start: int
    stride: int


# ---------------------------------------------------------------- configuration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_argument_group("model (one of --run, --pipeline, --base)")
    model.add_argument("--run", help="output folder of train.py (or of the original Tune-A-Video)")
    model.add_argument("--pipeline", help="a saved pipeline folder (VidSynth's or the original Tune-A-Video's)")
    model.add_argument("--base", help="SD-1.x folder or hub id: zero-shot editing (with --video)")
    model.add_argument("--video", help="the clip to edit (default: the run's clip)")
    edit = parser.add_argument_group("edit")
    edit.add_argument("--method", help="tuneavideo (default) | img2img: per-frame SD img2img (needs a base)")
    edit.add_argument("--compare", action="store_const", const=True, help="run both methods; add side-by-side grids")
    edit.add_argument("--prompt", action="append", dest="prompts", help="an edit prompt; repeat for several")
    edit.add_argument("--negative-prompt", dest="negative_prompt")
    edit.add_argument("--steps", type=int, help="DDIM sampling steps (default 50)")
    edit.add_argument("--guidance", type=float, help="classifier-free guidance scale (default 12.5)")
    edit.add_argument("--seed", type=int)
    edit.add_argument("--frames", type=int, help="frames to edit (default: the run's)")
    edit.add_argument("--inversion-steps", type=int, dest="inversion_steps", help="DDIM inversion steps (default 50)")
    edit.add_argument("--no-inversion", action="store_const", const=False, dest="inversion", help="start from noise")
    edit.add_argument("--strength", type=float, help="img2img: how far each frame is noised, in (0, 1] (default 0.5)")
    edit.add_argument("--batch-size", type=int, dest="batch_size", help="img2img: frames per batch (default 4)")
    output = parser.add_argument_group("output and hardware")
    output.add_argument("--out", help="output folder (must be new or empty)")
    output.add_argument("--format", dest="formats", help="comma-separated: mp4,gif (default both)")
    output.add_argument("--no-audio", action="store_const", const=False, dest="audio", help="leave the MP4s silent")
    output.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    output.add_argument("--dtype", help="fp32 | fp16 | bf16")
    layers = parser.add_argument_group("config layers (applied before the flags above)")
    layers.add_argument("--profile", help="a shipped profile: configs/NAME.yaml")
    layers.add_argument("--config", help="a YAML file with any InferenceConfig keys")
    layers.add_argument("overrides", nargs="*", metavar="key=value", help="config entries, e.g. sample_frame_rate=2")
    args = parser.parse_args(argv)
    if args.formats is not None:
        args.formats = [fmt.strip() for fmt in args.formats.split(",") if fmt.strip()]
    return args


def resolve_config(args: argparse.Namespace) -> InferenceConfig:
    """Defaults, then the profile, the config file, ``key=value`` entries, and explicit flags."""
    layers = []
    if args.profile:
        profile = PROFILES_DIR / f"{args.profile}.yaml"
        if not profile.is_file():
            known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
            raise VidSynthError(f"no profile {args.profile!r} ({profile} does not exist). Known profiles: {known}")
        layers.append(profile)
    if args.config:
        layers.append(args.config)
    config = load_config(InferenceConfig, layers, args.overrides)
    names = {f.name for f in dataclasses.fields(InferenceConfig)}
    flags = {key: value for key, value in vars(args).items() if key in names and value is not None}
    config = dataclasses.replace(config, **flags)  # re-runs the schema's checks on the flags
    if not config.prompts:
        raise VidSynthError('no prompt given. Pass --prompt "..." (repeat it for several edits)')
    for i, prompt in enumerate(config.prompts, start=1):
        if not prompt.strip():
            raise VidSynthError(f'prompt {i} is empty. Describe the edit, e.g. --prompt "a panda is surfing"')
    return config


# ---------------------------------------------------------------- checks before any model loads


def _existing_dir(path: str, what: str, fix: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise VidSynthError(f"{what} {folder.absolute()} does not exist or is not a folder. {fix}")
    return folder.absolute()


def _check_base(base: str) -> str:
    """A local SD folder must hold model_index.json; anything else must look like a hub id."""
    local = Path(base).expanduser()
    if local.exists():
        if not (local / "unet").is_dir():
            raise VidSynthError(f"base model {local} has no unet/ folder. Point --base at an SD-1.x model folder")
        return str(local.absolute())
    if re.fullmatch(r"[\w.-]+/[\w.-]+", base) and not base.startswith("."):
        return base  # a hub id
    raise VidSynthError(
        f"base model {base} not found. Pass --base with the SD-1.x folder (download_models.sh fetches SD-1.4)"
    )


def _clip_from_metadata(metadata: dict) -> dict:
    """The clip a trained file was tuned on (``Clip.metadata()`` stored by train.py)."""
    clip = metadata.get("clip") or {}
    indices = clip.get("frame_indices") or [0]
    stride = clip.get("sample_frame_rate") or (indices[1] - indices[0] if len(indices) > 1 else 1)
    return {
        "path": clip.get("path"),
        "frames": metadata.get("n_sample_frames") or len(indices),
        "width": clip.get("width"),
        "height": clip.get("height"),
        "start": indices[0],
        "stride": stride,
    }


def _clip_from_tuneavideo_config(folder: Path) -> dict:
    """The clip named by the ``config.yaml`` the original Tune-A-Video saved next to its pipeline."""
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        return {}
    data = OmegaConf.to_container(OmegaConf.load(config_file)).get("train_data") or {}
    keys = {"path": "video_path", "frames": "n_sample_frames", "width": "width", "height": "height"}
    clip = {ours: data.get(theirs) for ours, theirs in keys.items()}
    return {**clip, "start": data.get("sample_start_idx"), "stride": data.get("sample_frame_rate")}


def resolve_model(config: InferenceConfig) -> tuple[ModelSource, dict]:
    """The model to load and the clip it was tuned on (defaults for the clip options)."""
    if config.run and config.pipeline:
        raise VidSynthError("both --run and --pipeline were given. Pass only one of them")
    if config.run:
        run = _existing_dir(config.run, "tuning result folder", "Pass the output_dir of a finished train.py run")
        trained = run / TRAINED_FILE
        if trained.is_file():
            metadata = read_trained_metadata(trained)
            if (run / "pipeline" / "model_index.json").is_file() and not config.base:
                pipeline = ModelSource("pipeline", str(run / "pipeline"), metadata["base_model"])
                return pipeline, _clip_from_metadata(metadata)
            base = _check_base(config.base or metadata["base_model"])
            return ModelSource("trained", str(trained), base), _clip_from_metadata(metadata)
        if TuneAVideoPipeline.is_tuneavideo_folder(run):
            return ModelSource("tuneavideo", str(run)), _clip_from_tuneavideo_config(run)
        raise VidSynthError(
            f"{run} is not a tuning result: it has no {TRAINED_FILE}. Pass the output_dir of a finished train.py "
            "run, or a pipeline folder with --pipeline"
        )
    if config.pipeline:
        folder = _existing_dir(config.pipeline, "pipeline folder", "Pass a folder with model_index.json")
        if TuneAVideoPipeline.is_tuneavideo_folder(folder):
            return ModelSource("tuneavideo", str(folder)), _clip_from_tuneavideo_config(folder)
        if not (folder / "model_index.json").is_file():
            raise VidSynthError(f"{folder} has no model_index.json. Pass a folder written by save_pretrained")
        return ModelSource("pipeline", str(folder)), {}
    if config.base:
        return ModelSource("base", _check_base(config.base)), {}
    raise VidSynthError("no model given. Pass --run (a train.py result), --pipeline FOLDER, or --base with --video")


def resolve_img2img_base(config: InferenceConfig, source: ModelSource) -> str:
    """The plain SD-1.x model the per-frame baseline runs: ``--base``, else the one the tuning run started from."""
    check_strength(config.strength, config.steps)
    base = config.base or source.base
    if base is None:
        raise VidSynthError(
            f"the img2img baseline needs a plain SD-1.x model, and {source.path} is a full video pipeline. "
            "Pass --base with the SD-1.x folder it was made from"
        )
    return _check_base(base)


def resolve_clip(config: InferenceConfig, tuned: dict) -> ClipRequest:
    """Clip options: explicit ones, else the tuned clip's, else the tuning defaults; checked on the file."""
    defaults = TrainDataConfig()
    path = config.video or tuned.get("path")
    if not path:
        raise VidSynthError("no clip to edit: this model does not name one. Pass --video with the clip")

    def pick(key: str, tuned_key: str, default: int) -> int:
        value = getattr(config, key)
        return value if value is not None else (tuned.get(tuned_key) or default)

    request = ClipRequest(
        path=path,
        frames=pick("frames", "frames", defaults.n_sample_frames),
        width=pick("width", "width", defaults.width),
        height=pick("height", "height", defaults.height),
        start=pick("sample_start_idx", "start", defaults.sample_start_idx),
        stride=pick("sample_frame_rate", "stride", defaults.sample_frame_rate),
    )
    info = probe_video(request.path)
    available = len(range(request.start, info.num_frames, request.stride))
    if request.frames > available:
        raise VidSynthError(
            f"{info.path} has {info.num_frames} frames; from frame {request.start} at stride {request.stride} that "
            f"makes {available} frames, but {request.frames} were asked. Lower --frames to {max(available, 1)} "
            "(or lower sample_frame_rate / sample_start_idx)"
        )
    check_clip_request(request.path, request.frames, request.width, request.height, request.start, request.stride)
    return dataclasses.replace(request, path=info.path)


def resolve_out(config: InferenceConfig) -> Path:
    """The output folder: new, or empty. Default: a time-stamped folder under the run (or outputs/edits)."""
    if config.out:
        out = Path(config.out).expanduser().absolute()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise VidSynthError(f"{out} already holds files; results are never overwritten. Pass another --out")
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


def inversion_cache_path(config: InferenceConfig, source: ModelSource, clip: ClipRequest, device: torch.device) -> Path:
    """``<cache>/inversion-<hash>.pt``, keyed by model, clip, frames, size, steps, dtype and device type."""
    key = {
        "model": [_fingerprint(source.path), _fingerprint(source.base) if source.base else None],
        "clip": [_fingerprint(clip.path), clip.start, clip.stride],
        "frames": clip.frames,
        "size": [clip.width, clip.height],
        "steps": config.inversion_steps,
        "dtype": config.dtype,
        "device": device.type,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    if config.cache_dir:
        cache_dir = Path(config.cache_dir).expanduser()
    elif config.run:
        cache_dir = Path(config.run) / ".cache"
    else:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidsynth"
    return cache_dir.absolute() / f"inversion-{digest}.pt"


# ---------------------------------------------------------------- loading and writing


def load_pipeline(source: ModelSource, dtype: torch.dtype) -> TuneAVideoPipeline:
    try:
        if source.kind == "trained":
            return TuneAVideoPipeline.from_base(source.base, trained=source.path, dtype=dtype)
        if source.kind == "base":
            return TuneAVideoPipeline.from_base(source.path, dtype=dtype)
        if source.kind == "tuneavideo":
            return TuneAVideoPipeline.from_tuneavideo(source.path, dtype=dtype)
        return TuneAVideoPipeline.from_pretrained(source.path, dtype=dtype)
    except OSError as err:  # missing or unreadable model files, or a hub id that cannot be fetched
        raise VidSynthError(f"cannot load the model {source.name}: {err}. Check the path or download it") from err


def _slugs(prompts: list[str]) -> list[str]:
    """File names from prompts: lower-case words joined by '-', made unique."""
    names: list[str] = []
    for prompt in prompts:
        slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60].rstrip("-") or "edit"
        name, n = slug, 1
        while name in names:
            n += 1
            name = f"{slug}-{n}"
        names.append(name)
    return names


def sidecar(config: InferenceConfig, prompt: str, name: str, clip: Clip, model: str, method: str) -> dict:
    """The JSON written next to each MP4 (the team's shared sidecar format)."""
    return {
        "video": f"{name}.mp4",
        "prompt": prompt,
        "negative_prompt": config.negative_prompt,
        "method": method,
        "seed": config.seed,
        "steps": config.steps,
        "guidance": float(config.guidance),
        "strength": float(config.strength) if method == "img2img" else None,
        "model": model,
        "fps": clip.fps,
        "frames": len(clip.frame_indices),
        "width": clip.width,
        "height": clip.height,
        "source": {
            "path": clip.path,
            "fps": clip.source_fps,
            "frame_indices": list(clip.frame_indices),
            "start": clip.start,
            "duration": clip.duration,
        },
    }


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A hidden folder next to ``out``, renamed to ``out`` when the block completes and removed when it fails."""
    created_parent = not out.parent.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # checked empty before any model loaded
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_parent and not any(out.parent.iterdir()):
            out.parent.rmdir()
        raise


def _source_column(clip: Clip) -> tuple[str, np.ndarray]:
    return f"source: {Path(clip.path).name}", source_video(clip.pixels)


def write_edits(
    folder: Path, config: InferenceConfig, clip: Clip, videos: list[np.ndarray], model: str, method: str
) -> None:
    """One method's files in ``folder``: per prompt an MP4 (with sound) and its sidecar, and the GIF grid."""
    folder.mkdir(exist_ok=True)
    if "mp4" in config.formats:
        for prompt, video, name in zip(config.prompts, videos, _slugs(config.prompts), strict=True):
            mp4 = write_video(folder / f"{name}.mp4", video, clip.fps)
            if config.audio:
                add_audio(mp4, clip.path, mp4, start=clip.start, duration=clip.duration)
            write_json(folder / f"{name}.json", sidecar(config, prompt, name, clip, model, method))
    if "gif" in config.formats:
        columns = [_source_column(clip), *zip(config.prompts, videos, strict=True)]
        write_gif_grid(folder / "grid.gif", columns, clip.fps)


def write_comparison(
    folder: Path, config: InferenceConfig, clip: Clip, img2img: list[np.ndarray], tuned: list[np.ndarray]
) -> None:
    """Per prompt, ``compare-<prompt>.gif`` and ``.mp4`` (with sound): source | img2img | Tune-A-Video."""
    for prompt, name, baseline, edit in zip(config.prompts, _slugs(config.prompts), img2img, tuned, strict=True):
        columns = [
            _source_column(clip),
            (f"img2img (strength {config.strength:g}): {prompt}", baseline),
            (f"Tune-A-Video: {prompt}", edit),
        ]
        if "gif" in config.formats:
            write_gif_grid(folder / f"compare-{name}.gif", columns, clip.fps)
        if "mp4" in config.formats:
            mp4 = write_grid_video(folder / f"compare-{name}.mp4", columns, clip.fps)
            if config.audio:
                add_audio(mp4, clip.path, mp4, start=clip.start, duration=clip.duration)


def write_results(out: Path, config: InferenceConfig, clip: Clip, videos: list[np.ndarray], model: str) -> list[str]:
    """Write the results of ``config.method`` so that ``out`` appears only once all of them are complete."""
    with staged_folder(out) as tmp:
        write_edits(tmp, config, clip, videos, model, config.method)
        save_config(config, tmp / "config.yaml")
    return sorted(p.name for p in out.iterdir())


# ---------------------------------------------------------------- the two methods


def edit_tuneavideo(config: InferenceConfig, source: ModelSource, request: ClipRequest, clip: Clip) -> list[np.ndarray]:
    """The main method: video pipeline, DDIM inversion (cached) and sampling; one (3, F, H, W) video per prompt."""
    device = torch.device(config.device)
    pipe = load_pipeline(source, TORCH_DTYPES[config.dtype]).to(device)
    if not config.vae_slicing:
        pipe.vae.disable_slicing()
    video_latents = pipe.encode_video(clip.pixels)  # (1, 4, F, h, w)
    return render_edits(
        pipe,
        video_latents,
        config.prompts,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        negative_prompt=config.negative_prompt,
        inversion_steps=config.inversion_steps if config.inversion else None,
        seed=config.seed,
        inversion_cache=inversion_cache_path(config, source, request, device) if config.inversion else None,
    )


def edit_img2img(config: InferenceConfig, base: str, clip: Clip) -> list[np.ndarray]:
    """The baseline: SD img2img on every frame at the same steps, guidance and seed; one video per prompt."""
    pipe = load_img2img_pipeline(base, config.device, TORCH_DTYPES[config.dtype])
    if not config.vae_slicing:
        pipe.vae.disable_slicing()
    return render_img2img(
        pipe,
        clip.pixels,
        config.prompts,
        strength=config.strength,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        negative_prompt=config.negative_prompt,
        seed=config.seed,
        batch_size=config.batch_size,
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    config = resolve_config(parse_args(argv))
    source, tuned_clip = resolve_model(config)
    base = resolve_img2img_base(config, source) if config.method == "img2img" or config.compare else None
    request = resolve_clip(config, tuned_clip)
    out = resolve_out(config)
    device = resolve_device(config.device)
    config = dataclasses.replace(
        config,
        video=request.path,
        frames=request.frames,
        width=request.width,
        height=request.height,
        sample_start_idx=request.start,
        sample_frame_rate=request.stride,
        out=str(out),
        device=str(device),
    )

    clip = read_clip(request.path, request.frames, request.width, request.height, request.start, request.stride)
    if not config.compare:
        if config.method == "img2img":
            videos, model = edit_img2img(config, base, clip), base
        else:
            videos, model = edit_tuneavideo(config, source, request, clip), source.name
        files = write_results(out, config, clip, videos, model)
        print(f"{len(videos)} {config.method} edit(s) of {clip.path} in {out}: {', '.join(files)}")
        return
    baseline = edit_img2img(config, base, clip)
    tuned = edit_tuneavideo(config, source, request, clip)
    with staged_folder(out) as tmp:
        write_edits(tmp / "img2img", config, clip, baseline, base, "img2img")
        write_edits(tmp / "tuneavideo", config, clip, tuned, source.name, "tuneavideo")
        write_comparison(tmp, config, clip, baseline, tuned)
        save_config(config, tmp / "config.yaml")
    files = sorted(p.name + "/" * p.is_dir() for p in out.iterdir())
    print(f"img2img vs. tuneavideo, {len(tuned)} prompt(s) of {clip.path} in {out}: {', '.join(files)}")


if __name__ == "__main__":
    run_main(main)
