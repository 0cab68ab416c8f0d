"""The editing config: every option ``inference.py`` reads, with its default.

The command-line flags of ``inference.py`` set these keys, and a YAML file (``--config``, or
``--profile NAME`` for ``configs/NAME.yaml``) can hold all of them, e.g. a device profile with
``device``, ``dtype``, ``steps``, ``frames``, ``width``/``height`` and ``vae_slicing``. Clip options
left null are taken from the tuning run (its clip, frames and size); without a run they fall back to
the tuning defaults.
"""

from dataclasses import dataclass, field

from vidsynth.config.loader import check_choice
from vidsynth.errors import VidSynthError

DTYPES = ("fp32", "fp16", "bf16")
FORMATS = ("mp4", "gif")
METHODS = ("tuneavideo", "img2img")


@dataclass
class InferenceConfig:
    # --- the model: a tuning run, or a pipeline folder, or a base SD model (with video) ---
    run: str | None = None  # output_dir of train.py (or a pipeline folder the original Tune-A-Video saved)
    pipeline: str | None = None  # a saved pipeline folder (VidSynth's or the original Tune-A-Video's)
    base: str | None = None  # SD-1.x folder or hub id: zero-shot editing; with run, replaces the run's base model
    # --- the clip (null: the run's) ---
    video: str | None = None  # the clip to edit
    frames: int | None = None  # frames to edit
    width: int | None = None  # frames are resized to width x height (multiples of 8)
    height: int | None = None
    sample_start_idx: int | None = None  # first frame index used
    sample_frame_rate: int | None = None  # stride between used frames
    # --- the edit ---
    method: str = "tuneavideo"  # tuneavideo (the video UNet) | img2img (per-frame SD img2img baseline, needs base)
    compare: bool = False  # render both methods and a source | img2img | tuned grid per prompt
    prompts: list[str] = field(default_factory=list)  # one edited video per prompt
    negative_prompt: str | None = None  # what to steer away from (the unconditional text of guidance)
    steps: int = 50  # DDIM sampling steps
    guidance: float = 12.5  # classifier-free guidance scale (<= 1: no guidance)
    seed: int = 33  # seeds the starting noise (used without inversion)
    inversion: bool = True  # start from the DDIM-inverted clip (false: from noise)
    inversion_steps: int = 50  # DDIM inversion steps
    strength: float = 0.5  # img2img: how far each frame is noised, in (0, 1]; runs int(steps x strength) steps
    batch_size: int = 4  # img2img: frames per batch
    # --- hardware ---
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps
    dtype: str = "fp32"  # fp32 | fp16 | bf16: dtype of the models
    vae_slicing: bool = True  # run the VAE one frame at a time (less memory, a little slower)
    # --- output ---
    out: str | None = None  # output folder (must not hold files); default: <run>/edits/<time> or outputs/edits/<time>
    formats: list[str] = field(default_factory=lambda: list(FORMATS))  # mp4 (one per prompt) and/or gif (grid)
    audio: bool = True  # put the source's sound back on the MP4s
    cache_dir: str | None = None  # inverted latents; default: <run>/.cache, else ~/.cache/vidsynth

    def __post_init__(self):
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("method", self.method, METHODS)
        for fmt in self.formats:
            check_choice("formats", fmt, FORMATS)
        if not self.formats:
            raise VidSynthError(f"config key 'formats' is empty. Give at least one of {', '.join(FORMATS)}")
        for key in ("steps", "inversion_steps"):
            if getattr(self, key) < 1:
                raise VidSynthError(f"config key '{key}' must be at least 1, got {getattr(self, key)}. Use e.g. 50")
        if self.batch_size < 1:
            raise VidSynthError(f"config key 'batch_size' must be at least 1, got {self.batch_size}. Use e.g. 4")
        for key in ("frames", "width", "height", "sample_frame_rate"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise VidSynthError(f"config key '{key}' must be positive, got {value}. Leave it unset for the default")
