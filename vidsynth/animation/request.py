"""An animation request, resolved once: the model's numbers, the still, the size, the length, the segments.

Everything that can be wrong with a request is found here, before the pipeline loads: the input (an
image, an edit's first frame, a clip's span), the model (an image-to-video folder, by its JSON files),
the size (multiples the VAE takes), the length and the memory mode. What is below it (generating,
writing) reads this object and derives nothing again.
"""

import dataclasses
import types
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image

from vidsynth.animation.model import ModelFacts, model_facts
from vidsynth.animation.plan import Segment, frame_size, segments
from vidsynth.config.animate import STILL_FPS, AnimateConfig
from vidsynth.device import resolve_device
from vidsynth.dtypes import torch_dtype
from vidsynth.errors import VidSynthError
from vidsynth.media.sound import SoundSpan
from vidsynth.media.span import resolve_span
from vidsynth.media.still import read_still
from vidsynth.media.video import Clip, probe_video, read_frames
from vidsynth.workspace import OUTPUTS, new_output_folder


@dataclass(frozen=True, eq=False)
class AnimateRequest:
    config: AnimateConfig
    model: ModelFacts
    still: Image.Image  # RGB at its own size: what the first segment starts from
    still_ref: dict  # {"path": the image, or the video it was taken from; "frame": None, or its index there}
    stem: str  # the output files' name
    width: int
    height: int
    fps: float
    segments: list[Segment]  # of the generated frames (with --extend, the first is the clip's last frame again)
    clip: Clip | None  # the clip continued, at width x height (--extend)
    sound: SoundSpan | None  # the clip's sound for its part (--extend, when it has sound)
    out: Path
    device: torch.device
    dtype: torch.dtype

    @property
    def num_frames(self) -> int:
        """Frames the model's segments yield."""
        return self.segments[-1].stop


class _Input(NamedTuple):
    still: Image.Image
    ref: dict
    stem: str
    size: tuple[int, int]
    clip: Clip | None = None
    sound: SoundSpan | None = None


def _continued(config: AnimateConfig, multiple: int, native: int) -> _Input:
    """The span of ``config.video`` to continue, decoded at the animation's size (the clip's aspect ratio)."""
    info = probe_video(config.video)
    size = frame_size((info.width, info.height), native, multiple, config.width, config.height)
    asked = types.SimpleNamespace(
        video=config.video, start=config.start, end=config.end, start_frame=None, num_frames="all", stride=1,
        width=size[0], height=size[1], window=None, window_overlap=None,
    )  # fmt: skip
    clip = resolve_span(asked, {}, default_frames=info.num_frames, default_stride=1).read()
    sound = SoundSpan(clip.path, clip.start, clip.duration) if info.has_audio else None
    ref = {"path": clip.path, "frame": clip.frame_indices[-1]}
    return _Input(Image.fromarray(clip.frames[-1]), ref, Path(clip.path).stem, size, clip, sound)


def _input(config: AnimateConfig, facts: ModelFacts) -> _Input:
    """The still, where it came from, the output name and the frame size; with --extend, the clip and its sound."""
    multiple, native = facts.size_multiple, facts.native_long_side
    if config.video:
        return _continued(config, multiple, native)
    if config.from_edit:
        path = Path(config.from_edit).expanduser().absolute()
        probe_video(path)  # a clear message for a missing or unreadable file
        still, frame = Image.fromarray(read_frames(path, [0])[0]), 0
    else:
        path, still, frame = Path(config.image).expanduser().absolute(), read_still(config.image), None
    size = frame_size(still.size, native, multiple, config.width, config.height)
    return _Input(still, {"path": str(path), "frame": frame}, path.stem, size)


def _length(config: AnimateConfig, facts: ModelFacts, fps: float) -> int:
    """Frames the model's segments yield: the extension plus the clip's last frame, or the length asked for."""
    if config.extend is not None:
        if config.num_frames is not None or config.seconds is not None:
            raise VidSynthError("with --extend the length is the extension: drop --frames and --seconds")
        new = round(config.extend * fps)
        if new < 1:
            raise VidSynthError(f"--extend {config.extend:g} s is less than one frame at {fps:g} fps. Extend longer")
        return new + 1
    if config.seconds is not None:
        frames = round(config.seconds * fps)
        if frames < 1:
            raise VidSynthError(f"--seconds {config.seconds:g} is less than one frame at {fps:g} fps. Ask for more")
        return frames
    return config.num_frames or facts.num_frames


def resolve_request(config: AnimateConfig) -> AnimateRequest:
    """Check and resolve ``config`` into one :class:`AnimateRequest`; nothing heavy loads here."""
    facts = model_facts(config.model)
    given = _input(config, facts)
    fps = config.fps or (given.clip.fps if given.clip is not None else STILL_FPS)
    device = resolve_device(config.device)
    if config.offload != "none" and device.type != "cuda":
        raise VidSynthError(
            f"--offload {config.offload} moves models between the CPU and a GPU; on {device} use --offload none"
        )
    plan = segments(_length(config, facts, fps), facts.num_frames, config.seed)
    out = new_output_folder(config.out, OUTPUTS / "animations")
    resolved = dataclasses.replace(  # what the saved config names: every value as used
        config,
        model=facts.path,
        width=given.size[0],
        height=given.size[1],
        fps=fps,
        num_frames=None if config.extend is not None else plan[-1].stop,
        seconds=None,
        out=str(out),
        device=str(device),
    )
    return AnimateRequest(
        config=resolved,
        model=facts,
        still=given.still,
        still_ref=given.ref,
        stem=given.stem,
        width=given.size[0],
        height=given.size[1],
        fps=fps,
        segments=plan,
        clip=given.clip,
        sound=given.sound,
        out=out,
        device=device,
        dtype=torch_dtype(config.dtype),
    )
