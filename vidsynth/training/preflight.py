"""Everything about a tuning request that can be checked before a model loads.

Loading SD-1.x takes a while and tuning takes longer; a mistyped path, a clip that is too short or
a frame size that is not a multiple of 8 must fail in a second, with the fix, and leave nothing
behind. :func:`check_inputs` reads only paths, the clip's header and first frame: it runs before
torch, diffusers or accelerate are imported (importing them takes seconds, more on a cold disk).
:func:`check_training` does the checks that need them: the UNet's config, the trainable module
names (resolved on a UNet built on the meta device, without weights) and 8-bit Adam's package.
"""

from pathlib import Path

from vidsynth.config.train import TrainConfig, TrainDataConfig
from vidsynth.errors import VidSynthError
from vidsynth.hub import is_repo_id
from vidsynth.media.video import VideoInfo, check_clip_request
from vidsynth.testing.tiny_models import resolve_model
from vidsynth.training.span import TuningSpan

MODEL_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def check_model_path(model: str) -> None:
    """A local folder must have the five SD-1.x parts; anything else must look like a hub id."""
    path = Path(model)
    if path.exists():
        missing = [part for part in MODEL_PARTS if not (path / part).is_dir()]
        if missing:
            raise VidSynthError(
                f"pretrained_model_path {path} is not an SD-1.x model folder: it has no {', '.join(missing)} "
                "subfolder. Point it at a diffusers folder such as ./checkpoints/stable-diffusion-v1-4"
            )
    elif not is_repo_id(model):
        raise VidSynthError(
            f"pretrained_model_path {model} does not exist. Download the model (download_models.sh) "
            "or point pretrained_model_path at a local SD-1.x folder"
        )


def request_notes(cfg: TrainConfig) -> list[str]:
    """Where the run does other than a key says: validation edits the tuning clip itself, so they have its frames
    and size; xformers is never used."""
    val, data = cfg.validation_data, cfg.train_data
    notes = []
    if cfg.enable_xformers_memory_efficient_attention:
        notes.append("enable_xformers_memory_efficient_attention is ignored: PyTorch's SDPA attention is always used")
    if not val.prompts:
        return notes
    return notes + [
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


def check_inputs(cfg: TrainConfig) -> tuple[VideoInfo, TuningSpan]:
    """The checks that need no heavy library (no torch): the model path, the clip, its sizes and the span.
    ``pretrained_model_path: tiny`` becomes the offline tiny model's folder (built, with torch, the first time)."""
    cfg.pretrained_model_path = resolve_model(cfg.pretrained_model_path)
    check_model_path(cfg.pretrained_model_path)
    data = cfg.train_data
    info = check_clip_request(
        data.video_path, data.n_sample_frames, data.width, data.height, data.sample_start_idx, data.sample_frame_rate
    )
    return info, check_span(info, data)


def check_training(cfg: TrainConfig) -> int:
    """The checks that need torch and diffusers (imported here, not before); returns the trainable parameter count."""
    from vidsynth.training.optimizer import check_8bit_adam
    from vidsynth.training.unet_setup import count_trainable

    if cfg.use_8bit_adam:
        check_8bit_adam()
    return count_trainable(cfg)


def check_request(cfg: TrainConfig) -> tuple[VideoInfo, TuningSpan, int]:
    """All checks that need no model weights; returns the clip's info, the span and the trainable parameter count."""
    info, span = check_inputs(cfg)
    return info, span, check_training(cfg)
