"""The Animate tab's job and the stills it starts from.

A job is ``python -m vidsynth.animate --image STILL ...`` into ``<outputs>/animations/<time>``, then
``python -m vidsynth.evaluate`` on that folder, as an edit is. The still is always a PNG of
``<outputs>/stills/``: an uploaded image (checked as the command reads it, transparency flattened, named
after its content) or a frame of a clip or an edit that the app lists (:func:`frame_sources`), taken
out when the job is queued. So the command only ever reads a file the app wrote, and a frame that is
not in the video is refused before anything is queued.
"""

import dataclasses
from pathlib import Path

from PIL import Image

from vidsynth.animation.model import model_facts
from vidsynth.app.clips import digest, list_clips
from vidsynth.app.runs import finished_runs, run_edits
from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.commands import command
from vidsynth.config import AnimateConfig
from vidsynth.config.loader import config_from_layers
from vidsynth.errors import VidSynthError
from vidsynth.media.still import read_still
from vidsynth.media.video import probe_video, read_frames
from vidsynth.naming import slugify
from vidsynth.workspace import new_output_folder

# The page's settings and their flags; None (a blank field) leaves the command's default.
_FLAGS = {
    "num_frames": "--frames",
    "seconds": "--seconds",
    "fps": "--fps",
    "motion_bucket_id": "--motion-bucket-id",
    "noise_aug_strength": "--noise-aug-strength",
    "num_inference_steps": "--steps",
    "seed": "--seed",
    "decode_chunk_size": "--decode-chunk-size",
}


def _keep_png(image: Image.Image, kept: Path) -> Path:
    if kept.is_file():
        kept.touch()  # asked for again: as recent as a new upload (old uploads are removed, see app/uploads.py)
    else:
        with atomic_path(kept) as partial:
            image.save(partial, format="PNG")
    return kept


def keep_still(upload: Path, folder: Path) -> Path:
    """An uploaded image, read as animate reads it (refused with its message if it is not one), kept as a PNG."""
    image = read_still(upload)
    return _keep_png(image, folder / f"{slugify(upload.stem, max_len=40)}-{digest(upload)}.png")


def frame_sources(outputs: Path) -> list[str]:
    """The videos a frame may be taken from, relative to ``outputs``: the clips, then every finished run's
    edited MP4s (those with a sidecar; not ``--compare``'s side-by-side ones), the newest edits first."""
    sources = [f"clips/{name}" for name in list_clips(outputs / "clips")]
    for run in finished_runs(outputs):
        for edit in run_edits(outputs / run):
            folder = outputs / run / "edits" / edit
            videos = sorted(p for p in folder.rglob("*.mp4") if p.with_suffix(".json").is_file())
            sources += [p.relative_to(outputs).as_posix() for p in videos if not p.name.startswith(".")]
    return sources


def frame_still(video: Path, frame: int, folder: Path) -> Path:
    """Frame ``frame`` of ``video`` as a PNG in ``folder`` (the same frame asked for twice: one file)."""
    count = probe_video(video).num_frames
    if not 0 <= frame < count:
        raise VidSynthError(
            f"{video.name} has {count} frames, so frame {frame} is not one of them. Pick a frame from 0 to {count - 1}"
        )
    pixels = read_frames(video, [frame])[0]
    kept = folder / f"{slugify(video.stem, max_len=40)}-frame{frame}-{digest(video)}.png"
    return _keep_png(Image.fromarray(pixels), kept)


def animate_config(config: AnimateConfig) -> AnimateConfig:
    """``config`` after the checks ``python -m vidsynth.animate`` makes before loading a model."""
    config.check_input()
    model_facts(config.model)  # an image-to-video pipeline, read from its JSON files (the tiny one built once)
    read_still(config.image)
    return config


def animate_args(config: AnimateConfig, out: Path) -> list[str]:
    """``python -m vidsynth.animate`` and its flags for ``config``, writing into ``out``."""
    args = command("animate", "--image", config.image, "--model", config.model, "--out", str(out))
    for key, flag in _FLAGS.items():
        value = getattr(config, key)
        if value is not None:
            args += [flag, str(value)]
    return args


class AnimateTask:
    """``python -m vidsynth.animate ...`` into ``<folder>/<time>``, then ``python -m vidsynth.evaluate`` on it."""

    kind = "animate"

    def __init__(self, config: AnimateConfig, clip_model: str, folder: Path):
        self.config, self.clip_model, self.folder = config, clip_model, Path(folder)
        self.title = f"animate {Path(config.image).name}"
        self.output: Path | None = None  # decided when it begins (the queue stores it)

    def spec(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "clip_model": self.clip_model, "folder": str(self.folder)}

    @classmethod
    def from_spec(cls, spec: dict) -> "AnimateTask":
        config = config_from_layers(AnimateConfig, [(spec["config"], "the job queue")])
        return cls(config, spec["clip_model"], Path(spec["folder"]))

    def begin(self) -> list[tuple[str, list[str]]]:
        self.output = new_output_folder(None, self.folder)
        metrics = command("evaluate", str(self.output), "--clip-model", self.clip_model)
        return [("animating", animate_args(self.config, self.output)), ("metrics", metrics)]

    def finish(self, succeeded: bool) -> None:
        """Remove the temporaries a stopped animation was writing."""
        if self.output is not None:
            remove_stale_partials(self.output.parent)
