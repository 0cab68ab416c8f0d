"""The Edit tab's region options as ``inference.py``'s region keys and flags, and the span's first frame to click on.

An edit may change only part of the frame. The page offers one region source: a word of the prompts
(``--region``), a segmentation text (``--segment``) or a click on the span's first frame
(``--segment-point X,Y``, in the source video's pixels), or an uploaded black-and-white mask video
(``--mask-video``); then the edit inside or outside it, or a new background behind the subject (an
uploaded image or video, a ``#RRGGBB`` colour or ``blur``: ``--background``; or a prompt:
``--background-prompt``). What only the page can get wrong (two sources at once, a colour that does not
parse, a background without a region) is refused here in the page's words; the rest by ``inference.py``'s
own checks (:func:`vidsynth.app.edit.edit_config`). An uploaded mask video or background is checked as the
command reads it, then kept in ``mask-videos/`` or ``backgrounds/`` (as control videos are), and the queued
command names that copy, never a path the request typed.

The first frame is shown at most :data:`SHOWN_SIDE` pixels on its longer side; a click on it is mapped
back to the source's pixels (:func:`source_point`).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidsynth.app.animate import keep_still
from vidsynth.app.clips import keep_clip
from vidsynth.config.inference import COLOUR, InferenceConfig
from vidsynth.config.region import BLUR
from vidsynth.errors import VidSynthError
from vidsynth.media.span import resolve_span
from vidsynth.media.video import VIDEO_SUFFIXES, read_frames
from vidsynth.pipelines.source import resolve_model_source

SHOWN_SIDE = 512  # the first frame's longer side on the page, at most
MASK_VIDEOS, BACKGROUNDS = "mask-videos", "backgrounds"  # where uploads are kept, in the outputs folder
EDIT_CHOICES = {"inside": "edit inside the region", "outside": "edit outside the region"}
_FLAGS = {  # region keys of InferenceConfig the page sets, and their flags
    "region": "--region",
    "segment": "--segment",
    "mask_video": "--mask-video",
    "background": "--background",
    "background_prompt": "--background-prompt",
}


@dataclass(frozen=True)
class RegionChoice:
    """The page's region options as it sends them (a blank: None or empty); ``point`` is "X,Y" in the source's
    pixels."""

    word: str | None = None
    segment: str | None = None
    point: str | None = None
    mask_video: str | None = None  # an upload
    background_file: str | None = None  # an uploaded image or video
    background_colour: str | None = None  # #RRGGBB or blur
    background_prompt: str | None = None
    edit: str = "inside"


def parse_point(text: str) -> list[float]:
    """The text X,Y as two numbers (none when blank)."""
    if not text.strip():
        return []
    try:
        point = [float(value) for value in text.split(",")]
    except ValueError:
        point = []
    if len(point) != 2 or not all(np.isfinite(point)) or min(point) < 0:
        raise VidSynthError(
            f'"segment point" must be X,Y in the source\'s pixels, got {text!r}. Click the first frame, or write '
            "e.g. 320,180"
        )
    return point


def region_keys(choice: RegionChoice, segment_models: tuple[str, str]) -> dict:
    """The InferenceConfig keys of ``choice`` (uploads by their upload path, kept later by :func:`keep_uploads`);
    a segmentation uses ``segment_models`` (the app's SAM 2 video and CLIPSeg)."""
    word, segment, prompt = (
        text.strip() for text in (choice.word or "", choice.segment or "", choice.background_prompt or "")
    )
    point, colour = parse_point(choice.point or ""), (choice.background_colour or "").strip()
    sources = (("region word", word), ("segment", segment), ("segment point", point), ("mask video", choice.mask_video))
    given = [f'"{label}"' for label, value in sources if value]
    if segment and point:
        raise VidSynthError('both "segment" and "segment point" are given. Clear one: a text, or a click on the frame')
    if len(given) > 1:
        raise VidSynthError(f"{' and '.join(given)} are given: one region at a time. Clear all but one")
    if colour and choice.background_file:
        raise VidSynthError('both "background" and "background colour" are given. Clear one')
    if colour and not (COLOUR.fullmatch(colour) or colour == BLUR):
        raise VidSynthError(f'"background colour" {colour!r} is not a colour. Write #RRGGBB (e.g. #00ff00) or blur')
    background = choice.background_file or colour or None
    wants = [what for what, asked in (("a background", background), ("a background prompt", prompt)) if asked]
    wants += ["an edit outside the region"] * (choice.edit == "outside")
    if wants and not given:
        raise VidSynthError(
            f'{" and ".join(wants)} need{"s" * (len(wants) == 1)} a region. Fill in "region word" or "segment", '
            "click the first frame, or upload a mask video"
        )
    if choice.edit not in EDIT_CHOICES:
        raise VidSynthError(f'"region edit" {choice.edit!r} is not one of {", ".join(EDIT_CHOICES)}. Pick one')
    replaced = background or prompt  # the subject is kept, over a new background: no edit inside or outside
    if replaced and choice.edit == "outside":
        raise VidSynthError(
            f'"{EDIT_CHOICES["outside"]}" does not apply to a new background (the subject is kept, the background '
            f'replaced). Pick "{EDIT_CHOICES["inside"]}"'
        )
    keys = {"region": word or None, "segment": segment or None, "segment_point": point}
    keys |= {"mask_video": choice.mask_video or None, "background": background}
    keys |= {"background_prompt": prompt or None, "region_edit": choice.edit if given and not replaced else None}
    if segment or point:
        keys |= dict(zip(("segment_model", "segment_text_model"), segment_models, strict=True))
    return {key: value for key, value in keys.items() if value}


def region_args(config: InferenceConfig) -> list[str]:
    """``inference.py``'s region flags for ``config``."""
    args = [f"{flag}={getattr(config, key)}" for key, flag in _FLAGS.items() if getattr(config, key) is not None]
    if config.region_sources() == ["segment"]:
        args += [f"--segment-model={config.segment_model}", f"--segment-text-model={config.segment_text_model}"]
    if config.segment_point:
        args.append("--segment-point=" + ",".join(str(value) for value in config.segment_point))
    if config.region_edit is not None:
        args.append(f"--edit-{config.region_edit}")
    return args


def keep_uploads(config: InferenceConfig, outputs: Path) -> InferenceConfig:
    """``config`` naming the app's own copies of its uploaded mask video and background, in ``outputs``."""
    changes = {}
    if config.mask_video:
        changes["mask_video"] = str(keep_clip(Path(config.mask_video), _folder(outputs, MASK_VIDEOS)))
    if config.background and not (COLOUR.fullmatch(config.background) or config.background == BLUR):
        upload = Path(config.background)
        keep = keep_clip if upload.suffix.lower() in VIDEO_SUFFIXES else keep_still
        changes["background"] = str(keep(upload, _folder(outputs, BACKGROUNDS)))
    return dataclasses.replace(config, **changes)


def upload_folders(outputs: Path) -> list[Path]:
    """The folders of kept region uploads (removed when old and unused, as the other uploads)."""
    return [outputs / MASK_VIDEOS, outputs / BACKGROUNDS]


def _folder(outputs: Path, name: str) -> Path:
    (outputs / name).mkdir(parents=True, exist_ok=True)
    return outputs / name


def first_frame(run: Path) -> np.ndarray:
    """The first frame of the span an edit of ``run`` reads, at the source's size: (H, W, 3) uint8."""
    model = resolve_model_source(str(run), None, None, img2img=False)
    span = resolve_span(InferenceConfig(run=str(run)), model.tuned_clip, 1, 1)
    return read_frames(span.path, [span.start_frame])[0]


def shown_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` as the page shows it: at most :data:`SHOWN_SIDE` on its longer side."""
    height, width = frame.shape[:2]
    scale = min(1.0, SHOWN_SIDE / max(height, width))
    if scale == 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))


def source_point(x: float, y: float, shown: tuple[int, int], source: tuple[int, int]) -> tuple[float, float]:
    """A click at (``x``, ``y``) on the frame shown ``shown`` = (W, H), in the pixels of the ``source`` (W, H)."""
    return round(x * source[0] / shown[0], 1), round(y * source[1] / shown[1], 1)


def mark_point(frame: np.ndarray, x: float, y: float) -> np.ndarray:
    """``frame`` with a ring at (``x``, ``y``), where the click landed."""
    image = Image.fromarray(frame)
    radius = max(3, round(max(image.size) / 60))
    draw = ImageDraw.Draw(image)
    for width, colour in ((radius // 2 + 2, (0, 0, 0)), (max(1, radius // 2), (255, 64, 64))):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=width)
    return np.asarray(image)
