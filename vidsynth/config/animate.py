"""The animate config: every option ``python -m vidsynth.animate`` reads, with its default.

One input: a still (``image``), the first frame of an edit (``from_edit``), or a clip to continue
(``video`` with ``extend`` seconds, its span chosen with ``start``/``end`` as in ``inference.py``).
The length is ``num_frames`` or ``seconds`` (at ``fps``); longer than the model makes at once, it is
made in segments, each started from the previous one's last frame. The generation settings are
``StableVideoDiffusionPipeline``'s arguments, under its names. Checked here, before anything loads:
each value as it is set, the input (:meth:`AnimateConfig.check_input`) once all layers are applied.
"""

from dataclasses import dataclass
from typing import ClassVar

from vidsynth.config.loader import check_choice
from vidsynth.dtypes import DTYPE_NAMES
from vidsynth.errors import VidSynthError

DEFAULT_MODEL = "checkpoints/stable-video-diffusion-img2vid-xt"
OFFLOADS = ("none", "model", "sequential")
STILL_FPS = 7.0  # StableVideoDiffusionPipeline's default frame rate (its fps conditioning)


@dataclass
class AnimateConfig:
    # --- the input: one of image, from_edit, video (with extend) ---
    image: str | None = None  # a still (PNG, JPEG, ...), e.g. a frame taken with vidsynth.frames extract
    from_edit: str | None = None  # an edit's MP4: its first frame is animated
    video: str | None = None  # a clip (or an edit's MP4) continued past its end by extend seconds
    start: float | None = None  # seconds into the clip where its kept part starts
    end: float | None = None  # seconds into the clip where it ends and the generated part begins (null: its end)
    extend: float | None = None  # seconds generated after the clip
    # --- the model and the length ---
    model: str = DEFAULT_MODEL  # an image-to-video pipeline folder or hub id (SVD, SVD-XT), or tiny
    num_frames: int | None = None  # frames in the result (null: the model's own count); more: made in segments
    seconds: float | None = None  # the length in seconds instead (frames = seconds x fps)
    fps: float | None = None  # frame rate of the MP4 and of the model's fps conditioning (null: 7, or the clip's)
    width: int | None = None  # null: the input's aspect ratio, the longer side the model's native size
    height: int | None = None
    # --- StableVideoDiffusionPipeline's settings ---
    motion_bucket_id: int = 127  # more motion for higher values
    noise_aug_strength: float = 0.02  # noise added to the still: more makes the result depart further from it
    num_inference_steps: int = 25
    min_guidance_scale: float = 1.0  # guidance grows from this (first frame) to max (last frame)
    max_guidance_scale: float = 3.0
    seed: int = 33  # each segment k is drawn with seed + k
    decode_chunk_size: int | None = None  # frames the VAE decodes at once (null: all; 1-2 saves memory)
    # --- hardware ---
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps
    dtype: str = "fp32"  # fp32 | fp16 | bf16: dtype of the models
    offload: str = "none"  # none | model (each model on the GPU only while it runs) | sequential (each layer)
    forward_chunking: bool = False  # the UNet's feed-forward layers one frame at a time (less memory)
    # --- output ---
    out: str | None = None  # output folder (must not hold files); default: outputs/animations/<time>
    png: bool = False  # also write every frame as a lossless numbered PNG

    ALIASES: ClassVar[dict[str, str]] = {"frames": "num_frames", "steps": "num_inference_steps"}

    def __post_init__(self):
        check_choice("dtype", self.dtype, DTYPE_NAMES)
        check_choice("offload", self.offload, OFFLOADS)
        for key in ("num_frames", "num_inference_steps", "decode_chunk_size", "width", "height"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise VidSynthError(f"config key '{key}' must be at least 1, got {value}. Use e.g. 14")
        for key in ("fps", "seconds", "extend"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise VidSynthError(f"config key '{key}' must be more than 0, got {value}. Use e.g. 7")
        for key in ("motion_bucket_id", "noise_aug_strength", "min_guidance_scale", "max_guidance_scale"):
            if not getattr(self, key) >= 0:
                raise VidSynthError(f"config key '{key}' must not be negative, got {getattr(self, key)}")
        if self.seconds is not None and self.num_frames is not None:
            raise VidSynthError("the length is given twice (num_frames and seconds). Keep one")

    def check_input(self) -> None:
        """Exactly one input, and options that fit it: checked once every layer is applied (a layer may set it)."""
        given = [key for key in ("image", "from_edit", "video") if getattr(self, key)]
        if len(given) != 1:
            raise VidSynthError(
                f"give one input, got {len(given) or 'none'}{': ' + ', '.join(given) if given else ''}. "
                "Use --image STILL, --from-edit EDIT.mp4, or --video CLIP with --extend SECONDS"
            )
        if self.extend is not None and not self.video:
            raise VidSynthError("--extend continues a clip: give the clip with --video CLIP")
        if self.video and self.extend is None:
            raise VidSynthError(f"--video {self.video} needs --extend SECONDS: how long to continue it")
        if (self.start is not None or self.end is not None) and not self.video:
            raise VidSynthError("--start/--end choose the span of a --video clip; a still has none. Drop them")
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise VidSynthError(f"config key '{key}' is seconds into the clip and must be 0 or more, got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise VidSynthError(f"--end ({self.end:g} s) is not after --start ({self.start:g} s). Give a later end")
