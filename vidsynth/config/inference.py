"""The editing config: every option ``inference.py`` reads, with its default.

The command-line flags of ``inference.py`` set these keys, and a YAML file (``--config``, or
``--profile NAME`` for ``configs/NAME.yaml``) can hold all of them, e.g. a device profile with
``device``, ``dtype``, ``num_inference_steps``, ``num_frames``, ``width``/``height`` and
``vae_slicing``. Clip options left null are taken from the tuning run (its clip, span, frames and
size); without a run, the frames and stride from the tuning defaults and the size from the clip's
aspect ratio. A span can be chosen by time (``start``/``end`` in seconds: every frame of it at the
stride) or by frames (``start_frame``, ``num_frames``; ``num_frames: all`` is the rest of the clip).
Keys use diffusers' words; the original Tune-A-Video's (and older VidSynth's) names are accepted too
(``ALIASES``), so its ``validation_data`` settings can be pasted in.

LoRAs: ``lora_scale`` scales a LoRA tuning run's adapters (0: the base projections, 1: as tuned), and
``loras`` stacks community SD-1.x LoRAs on the model (``PATH_OR_ID[:SCALE]`` each, diffusers' or kohya's
format); every adapter is fused into the weights before sampling.

Structure guidance: ``controls`` (``canny``, ``depth``) and ``control_videos`` (maps made elsewhere,
e.g. pose renders), each with a ControlNet (``controlnets``, one per control in that order: the
``controls``, then the ``control_videos``; default for canny and depth: the SD-1.5 ControlNets) and a
scale (``control_scales``: none for 1.0 each, one for all, or one per control).

Regions: an edit limited to part of the frame. The region comes from a word of a prompt (``region``:
its cross-attention), a segmentation model (``segment``, or ``segment_point`` / ``segment_box`` on the
span's first frame, in the source video's pixels) or a black-and-white ``mask_video``; ``region_from``
picks one when several are given. ``region_edit`` (inside, the default, or outside) says where the
edit acts; ``background`` (an image, a video, ``#RRGGBB`` or ``blur``) keeps the region's subject over a
new background instead, optionally followed by a light edit (``harmonize``); ``background_prompt``
generates the background with the video model (an edit outside the region with that prompt).
"""

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vidsynth.config.loader import check_choice
from vidsynth.dtypes import DTYPE_NAMES
from vidsynth.errors import VidSynthError

FORMATS = ("mp4", "gif")
METHODS = ("tuneavideo", "img2img")
CONTROLS = ("canny", "depth")  # maps extracted from the clip; anything else comes as a control video
DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
REGION_SOURCES = ("word", "segment", "mask-video")  # --region, --segment (or a point / box), --mask-video
REGION_EDITS = ("inside", "outside")
SEGMENT_MODEL = "facebook/sam2.1-hiera-tiny"  # SAM 2 video: propagates a mask through the span
SEGMENT_TEXT_MODEL = "CIDAS/clipseg-rd64-refined"  # CLIPSeg: a text to a mask on the first frame
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")  # a background colour, #RRGGBB


@dataclass
class InferenceConfig:
    # --- the model: a tuning run, or a pipeline folder, or a base SD model (with video) ---
    run: str | None = None  # output_dir of train.py (or a pipeline folder the original Tune-A-Video saved)
    pipeline: str | None = None  # a saved pipeline folder (VidSynth's or the original Tune-A-Video's)
    base: str | None = None  # SD-1.x folder or hub id: zero-shot editing; with run, replaces the run's base model
    # --- the clip (null: the run's) ---
    video: str | None = None  # the clip to edit
    start: float | None = None  # seconds into the clip where the span starts (or start_frame)
    end: float | None = None  # seconds into the clip where the span ends (null: the clip's end)
    num_frames: Any = None  # frames to edit: a number, or "all" (every frame of the span at the stride)
    width: int | None = None  # frames are resized to width x height (multiples of 8)
    height: int | None = None
    start_frame: int | None = None  # index of the first frame used
    stride: int | None = None  # source frames between two used frames (1: every frame, the source's frame rate)
    window: int | None = None  # frames the UNet sees at once, longer spans in overlapping windows (default: the run's)
    window_overlap: int | None = None  # frames consecutive windows share, blended (default: window / 4, at most 4)
    # --- the edit ---
    method: str = "tuneavideo"  # tuneavideo (the video UNet) | img2img (per-frame SD img2img baseline, needs base)
    compare: bool = False  # render both methods and a source | img2img | tuned grid per prompt
    prompts: list[str] = field(default_factory=list)  # one edited video per prompt
    negative_prompt: str | None = None  # what to steer away from (the unconditional text of guidance)
    num_inference_steps: int = 50  # DDIM sampling steps
    guidance_scale: float = 12.5  # classifier-free guidance scale (<= 1: no guidance; never negative)
    seed: int = 33  # seeds the starting noise (used without inversion) and img2img's noise
    inversion: bool = True  # start from the DDIM-inverted clip (false: from noise)
    inversion_steps: int = 50  # DDIM inversion steps
    strength: float = 0.5  # img2img: how far each frame is noised, in (0, 1]; runs int(steps x strength) steps
    batch_size: int = 4  # img2img: frames per batch
    # --- LoRA ---
    lora_scale: float = 1.0  # the LoRA run's adapters: 0 = the base projections, 1 = as tuned (LoRA runs only)
    loras: list[str] = field(default_factory=list)  # SD-1.x LoRAs stacked on the model: PATH_OR_ID[:SCALE] each
    # --- structure guidance (ControlNet) ---
    controls: list[str] = field(default_factory=list)  # maps extracted from the clip: canny | depth
    control_videos: list[str] = field(default_factory=list)  # maps made elsewhere (e.g. pose), one frame per frame
    controlnets: list[str] = field(default_factory=list)  # one per control (controls, then control_videos)
    control_scales: list[float] = field(default_factory=list)  # none: 1.0 each; one for all; or one per control
    control_guidance_start: float = 0.0  # fraction of the sampling steps where the ControlNets start acting
    control_guidance_end: float = 1.0  # ... and where they stop
    canny_low_threshold: int = 100  # cv2.Canny's hysteresis thresholds (the ControlNet annotator's defaults)
    canny_high_threshold: int = 200
    depth_model: str = DEPTH_MODEL  # transformers depth-estimation model (hub id or folder) for the depth control
    # --- region (an edit limited to part of the frame) ---
    region: str | None = None  # a word/phrase of the source prompt (the run's) or an edit prompt: its attention
    segment: str | None = None  # text for the segmentation model, e.g. person or face
    segment_point: list[float] = field(default_factory=list)  # X, Y on the span's first frame (source pixels)
    segment_box: list[float] = field(default_factory=list)  # X0, Y0, X1, Y1 on the span's first frame (source pixels)
    mask_video: str | None = None  # a black-and-white video of the span, one frame per edited frame (any size)
    region_from: str | None = None  # word | segment | mask-video; inferred when only one source is given
    region_edit: str | None = None  # inside (the default with a region) | outside
    background: str | None = None  # IMAGE | VIDEO | #RRGGBB | blur: the region's subject over a new background
    harmonize: float = 0.0  # after --background: strength of a light edit of the background, in [0, 1)
    background_prompt: str | None = None  # generate the background with this prompt (edit outside), subject kept
    segment_model: str = SEGMENT_MODEL  # SAM 2 video model (hub id, folder, or tiny)
    segment_text_model: str = SEGMENT_TEXT_MODEL  # CLIPSeg model for a segment text (hub id, folder, or tiny)
    mask_threshold: float = 0.3  # threshold of the normalised attention map / segmentation probability
    mask_dilate: int = 8  # pixels the mask grows by
    mask_feather: int = 8  # pixels of the soft edge where decoded pixels are composited
    # --- hardware ---
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps
    dtype: str = "fp32"  # fp32 | fp16 | bf16: dtype of the models
    vae_slicing: bool = True  # run the VAE one frame at a time (less memory, a little slower)
    # --- output ---
    out: str | None = None  # output folder (must not hold files); default: <run>/edits/<time> or outputs/edits/<time>
    formats: list[str] = field(default_factory=lambda: list(FORMATS))  # mp4 (one per prompt) and/or gif (grid)
    audio: bool = True  # put the source's sound back on the MP4s
    cache_dir: str | None = None  # inverted latents; default: <run>/.cache, else ~/.cache/vidsynth

    # Other names for keys, read where configs are read: the original Tune-A-Video's, and VidSynth's before 0.2.
    ALIASES: ClassVar[dict[str, str]] = {
        "n_sample_frames": "num_frames",
        "video_length": "num_frames",
        "frames": "num_frames",
        "sample_start_idx": "start_frame",
        "sample_frame_rate": "stride",
        "num_inv_steps": "inversion_steps",
        "steps": "num_inference_steps",
        "guidance": "guidance_scale",
    }

    def __post_init__(self):
        check_choice("dtype", self.dtype, DTYPE_NAMES)
        check_choice("method", self.method, METHODS)
        for fmt in self.formats:
            check_choice("formats", fmt, FORMATS)
        if not self.formats:
            raise VidSynthError(f"config key 'formats' is empty. Give at least one of {', '.join(FORMATS)}")
        for key in ("num_inference_steps", "inversion_steps", "batch_size"):
            if getattr(self, key) < 1:
                raise VidSynthError(f"config key '{key}' must be at least 1, got {getattr(self, key)}. Use e.g. 4")
        if self.guidance_scale < 0:
            raise VidSynthError(
                f"config key 'guidance_scale' must not be negative, got {self.guidance_scale}. "
                "Use e.g. 12.5, or 1 for no guidance"
            )
        for key in ("width", "height", "stride"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise VidSynthError(f"config key '{key}' must be positive, got {value}. Leave it unset for the default")
        if self.start_frame is not None and self.start_frame < 0:
            raise VidSynthError(f"config key 'start_frame' must be 0 or more, got {self.start_frame}")
        if self.num_frames is not None and self.num_frames != "all":
            if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or self.num_frames < 1:
                raise VidSynthError(
                    f"config key 'num_frames' must be a positive number or 'all', got {self.num_frames!r}. "
                    "Use e.g. 24, or all for every frame of the span"
                )
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise VidSynthError(f"config key '{key}' is seconds into the clip and must be 0 or more, got {value}")
        if self.start is not None and self.start_frame is not None:
            raise VidSynthError("the span's start is given twice (start in seconds and start_frame). Keep one")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise VidSynthError(
                f"--end ({self.end:g} s) is not after --start ({self.start:g} s). Give an end later than the start"
            )
        if self.window is not None and self.window < 1:
            raise VidSynthError(f"config key 'window' must be at least 1 frame, got {self.window}. Use e.g. 24")
        if self.window_overlap is not None and self.window_overlap < 0:
            raise VidSynthError(f"config key 'window_overlap' must be 0 or more, got {self.window_overlap}. Use e.g. 4")
        if not math.isfinite(self.lora_scale):
            raise VidSynthError(f"config key 'lora_scale' must be a number, got {self.lora_scale}. Use e.g. 1.0")
        self._check_controls()
        self._check_region()

    def _check_controls(self) -> None:
        for name in self.controls:
            if name not in CONTROLS:
                raise VidSynthError(
                    f"unknown control {name!r} (--control). Known controls: {', '.join(CONTROLS)}; for another kind "
                    "(e.g. pose), make its maps elsewhere and pass them with --control-video and --controlnet"
                )
        for scale in self.control_scales:
            if not math.isfinite(scale) or scale < 0:
                raise VidSynthError(f"config key 'control_scales' must hold numbers >= 0, got {scale}. Use e.g. 1.0")
        start, end = self.control_guidance_start, self.control_guidance_end
        if not 0 <= start < end <= 1:
            raise VidSynthError(
                f"control_guidance_start ({start:g}) and control_guidance_end ({end:g}) are fractions of the sampling "
                "steps with 0 <= start < end <= 1. Use e.g. 0 and 1"
            )
        low, high = self.canny_low_threshold, self.canny_high_threshold
        if not 0 <= low <= high:
            raise VidSynthError(
                f"canny thresholds must satisfy 0 <= canny_low_threshold <= canny_high_threshold, got {low} and "
                f"{high}. Use e.g. 100 and 200"
            )

    def region_sources(self) -> list[str]:
        """The region sources given (``REGION_SOURCES`` names), in that order."""
        given = (self.region, self.segment or self.segment_point or self.segment_box, self.mask_video)
        return [name for name, value in zip(REGION_SOURCES, given, strict=True) if value]

    def _check_region(self) -> None:
        if self.region_from is not None:
            check_choice("region_from", self.region_from, REGION_SOURCES)
        if self.region_edit is not None:
            check_choice("region_edit", self.region_edit, REGION_EDITS)
        if len(self.segment_point) not in (0, 2):
            raise VidSynthError(f"--segment-point takes X,Y (2 numbers), got {self.segment_point}. Use e.g. 120,80")
        box = self.segment_box
        if box and (len(box) != 4 or not (box[0] < box[2] and box[1] < box[3])):
            raise VidSynthError(
                f"--segment-box takes X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1, got {box}. Use e.g. 10,20,200,180"
            )
        if not 0 <= self.harmonize < 1:
            raise VidSynthError(f"config key 'harmonize' must be in [0, 1), got {self.harmonize:g}. Use e.g. 0.3")
        if not 0 < self.mask_threshold < 1:
            raise VidSynthError(f"config key 'mask_threshold' must be in (0, 1), got {self.mask_threshold:g}")
        for key in ("mask_dilate", "mask_feather"):
            if getattr(self, key) < 0:
                raise VidSynthError(f"config key '{key}' is pixels and must be 0 or more, got {getattr(self, key)}")
        background = self.background
        if background is not None and background.startswith("#") and not COLOUR.fullmatch(background):
            raise VidSynthError(
                f"--background colour {background!r} does not parse. Write it as #RRGGBB, e.g. #00ff00 for green"
            )
        self._check_region_sources()

    def _check_region_sources(self) -> None:
        sources = self.region_sources()
        uses = [name for name, used in self._region_uses() if used]
        if not sources:
            if uses or self.region_from:
                raise VidSynthError(
                    f"{uses[0] if uses else '--region-from'} needs a region. Add --region WORD, --segment TEXT "
                    "(or --segment-point / --segment-box) or --mask-video FILE"
                )
            return
        if self.region_from is None and len(sources) > 1:
            raise VidSynthError(
                f"several region sources given ({', '.join(sources)}). Pick one with --region-from {'|'.join(sources)}"
            )
        if self.region_from is not None and self.region_from not in sources:
            raise VidSynthError(
                f"--region-from {self.region_from} but no such region was given (given: {', '.join(sources)}). "
                "Give it, or pick a given one"
            )
        if self.segment and (self.segment_point or self.segment_box):
            raise VidSynthError(
                "--segment TEXT finds the object itself; --segment-point / --segment-box place it by hand. Give one"
            )
        if self.background is not None and self.background_prompt is not None:
            raise VidSynthError("--background and --background-prompt both replace the background. Keep one")
        if (self.background is not None or self.background_prompt is not None) and self.region_edit is not None:
            raise VidSynthError(
                "--edit-inside/--edit-outside do not apply to a background replacement (it keeps the region's "
                "subject). Leave them out"
            )
        if self.harmonize and self.background is None:
            raise VidSynthError("--harmonize edits a replaced background. Add --background, or leave it out")

    def _region_uses(self) -> list[tuple[str, bool]]:
        """The options that act on a region, each with whether it is set."""
        return [
            ("--edit-inside/--edit-outside", self.region_edit is not None),
            ("--background", self.background is not None),
            ("--background-prompt", self.background_prompt is not None),
            ("--harmonize", bool(self.harmonize)),
        ]
