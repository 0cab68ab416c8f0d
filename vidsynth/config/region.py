"""An edit's region resolved before any model loads: where its mask comes from and what is done with it.

:func:`resolve_region` turns the config's region options, with values already resolved (the tuning
run's prompt, the span), into one :class:`RegionSpec` (or None without a region) and refuses, with the
fix, everything that can be known wrong from the text, the headers and the files: a region word in
neither prompt, a mask video of another length or unreadable, a background file that is neither an
image nor a video, a region edit that cannot blend with the source (no inversion, or inversion steps
other than the sampling steps). Data and checks only: where the masks are cached is named with the
other cache files (:func:`vidsynth.cache_keys.mask_cache_path`).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vidsynth.config.inference import InferenceConfig
from vidsynth.errors import VidSynthError
from vidsynth.media.span import ClipSpan
from vidsynth.media.video import VIDEO_SUFFIXES, probe_video

BLUR = "blur"  # --background blur: the source's own background, blurred


@dataclass(frozen=True)
class RegionSpec:
    """One edit's region. ``point``/``box`` are in the edited frames' pixels (W x H); ``cache``: the masks' file."""

    source: str  # word | segment | mask-video
    edit: str  # inside | outside: where the prompt acts
    text: str | None = None  # the region word (word) or the segmentation text (segment)
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None
    mask_video: str | None = None  # absolute
    background: str | None = None  # a file (absolute), #RRGGBB or blur
    harmonize: float = 0.0
    background_prompt: str | None = None
    segment_model: str | None = None
    segment_text_model: str | None = None
    threshold: float = 0.3
    dilate: int = 8
    feather: int = 8
    word_prompt: str | None = None  # the prompt that holds the region word
    cache: Path | None = None  # where the masks are cached (None: a mask video, read as it is)

    def describe(self) -> dict:
        """The sidecar's record: where the mask came from and what was done with it."""
        entry = {"source": self.source, "edit": self.edit, "feather": self.feather}
        if self.source == "word":
            entry.update(word=self.text, prompt=self.word_prompt)
        elif self.source == "segment":
            entry.update(text=self.text, point=self.point, box=self.box, model=self.segment_model)
            entry["text_model"] = self.segment_text_model if self.text else None
        else:
            entry["mask_video"] = self.mask_video
        if self.source != "mask-video":
            entry.update(threshold=self.threshold, dilate=self.dilate)
        if self.background is not None:
            entry.update(background=self.background, harmonize=self.harmonize)
        if self.background_prompt is not None:
            entry["background_prompt"] = self.background_prompt
        return entry


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _holds(prompt: str, phrase: list[str]) -> bool:
    words = _words(prompt)
    return any(words[i : i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))


def word_prompt(phrase: str, source_prompt: str | None, prompts: list[str]) -> str:
    """The prompt whose cross-attention gives the mask of ``phrase``: the source's if it holds it, else an edit's."""
    words = _words(phrase)
    candidates = [p for p in (source_prompt, *prompts) if p]
    for prompt in candidates:
        if words and _holds(prompt, words):
            return prompt
    known = sorted({w for p in candidates for w in _words(p)})
    where = f"the source prompt ({source_prompt!r}) or an edit prompt" if source_prompt else "an edit prompt"
    raise VidSynthError(f"--region {phrase!r} is not a word of {where}. Pick one of their words: {', '.join(known)}")


def _mask_video(path: str, span: ClipSpan) -> str:
    info = probe_video(path)  # a missing or unreadable file fails here with the fix
    if info.num_frames != span.num_frames:
        raise VidSynthError(
            f"mask video {Path(path).name} has {info.num_frames} frames, the edit {span.num_frames}. Give one mask "
            f"frame per edited frame (white: the region), or change the span (--frames, --stride, --start)"
        )
    return info.path


def _background(background: str) -> str:
    if background.startswith("#") or background == BLUR:
        return background  # the colour was checked with the config
    path = Path(background).expanduser().absolute()
    if not path.is_file():
        raise VidSynthError(
            f"--background {background} is not a file, a #RRGGBB colour or blur. Pass an image, a video, e.g. "
            "#00ff00, or blur"
        )
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return probe_video(path).path
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError):
        raise VidSynthError(
            f"--background {path.name} is neither an image nor a video. Pass a PNG/JPEG or an MP4, #RRGGBB or blur"
        ) from None
    return str(path)


def _check_blending(config: InferenceConfig) -> None:
    """A region edit with the video model blends with the source's inverted latents, step for step."""
    if config.method != "tuneavideo" and not config.compare:
        return
    if not config.inversion:
        raise VidSynthError(
            "a region edit keeps the source outside its region from the inverted clip, so it needs the inversion. "
            "Leave out --no-inversion"
        )
    if config.inversion_steps != config.num_inference_steps:
        raise VidSynthError(
            f"a region edit blends with the source's inverted latents at each step: --inversion-steps "
            f"({config.inversion_steps}) must equal --steps ({config.num_inference_steps}). Give both the same"
        )


def _scaled(values: list[float], span: ClipSpan) -> tuple[float, ...] | None:
    """A point or box in the source video's pixels, in the edited frames' pixels."""
    if not values:
        return None
    width, height = span.info.width, span.info.height
    if any(not 0 <= v <= (width if i % 2 == 0 else height) for i, v in enumerate(values)):
        flag = "--segment-point" if len(values) == 2 else "--segment-box"
        raise VidSynthError(
            f"{flag} {','.join(f'{v:g}' for v in values)} lies outside the frame, which is {width}x{height} pixels "
            "in the source video. Give coordinates from 0,0 to its width,height"
        )
    sx, sy = span.width / span.info.width, span.height / span.info.height
    return tuple(v * (sx if i % 2 == 0 else sy) for i, v in enumerate(values))


def resolve_region(config: InferenceConfig, source_prompt: str | None, span: ClipSpan) -> RegionSpec | None:
    """The region of ``config`` checked and resolved (its ``cache`` still unnamed), or None without one.

    ``source_prompt``: the tuning run's prompt; ``span``: the resolved span of the clip.
    """
    sources = config.region_sources()
    if not sources:
        return None
    source = config.region_from or sources[0]
    if config.background is not None and (config.compare or config.method != "tuneavideo"):
        raise VidSynthError(
            "--background replaces the edit by a composite, so --compare and --method img2img do not apply. "
            "Leave them out"
        )
    if config.background is None or config.harmonize:
        _check_blending(config)
    text = {"word": config.region, "segment": config.segment}.get(source)
    spec = dict(source=source, text=text, threshold=config.mask_threshold, dilate=config.mask_dilate)
    if source == "word":
        if config.method != "tuneavideo" and not config.compare:
            raise VidSynthError(
                "a --region word's mask comes from the video model's attention, and --method img2img does not run "
                "it. Use --compare, or --segment / --mask-video for the baseline"
            )
        spec["word_prompt"] = word_prompt(config.region, source_prompt, config.prompts)
    elif source == "segment":
        spec.update(point=_scaled(config.segment_point, span), box=_scaled(config.segment_box, span))
        spec.update(segment_model=config.segment_model, segment_text_model=config.segment_text_model)
    else:
        spec["mask_video"] = _mask_video(config.mask_video, span)
    outside = config.background_prompt is not None or config.region_edit == "outside"
    return RegionSpec(
        edit="outside" if outside else "inside",
        background=None if config.background is None else _background(config.background),
        harmonize=config.harmonize,
        background_prompt=config.background_prompt,
        feather=config.mask_feather,
        **spec,
    )
