"""The experiment file: clips, a tuning config, editing keys and a grid of settings, typed like the other configs.

    clips:                      # a list of entries, or the path of a CSV with the same columns
      - video: ../shared/media/car-turn.mp4
        prompt: a jeep car is moving on the road        # the source caption (train_data.prompt)
        edits: [a jeep car is moving on the beach, a jeep car is moving on the snow]
        n_sample_frames: 8                              # optional span keys, as train_data's
      - image: product.png                              # a still: animated (vidsynth.animate), not tuned or edited
    train: configs/clip.yaml    # a train.py YAML, or its keys inline; the clip keys are filled in per clip
    edit: {num_inference_steps: 50}                     # inference.py keys every edit uses
    animate: {model: tiny}                              # vidsynth.animate keys every animation uses
    grid:                       # dotted keys (train.*, edit.* or animate.*), a list of values each: their product runs
      train.learning_rate: [3e-5, 1e-4]
      edit.guidance_scale: [7.5, 12.5]
      animate.motion_bucket_id: [60, 127]
    clip_model: openai/clip-vit-large-patch14           # CLIP for the metrics (hub id or folder)
    out: outputs/experiments/example

The ``train.*`` and ``edit.*`` grid keys multiply the video entries only, the ``animate.*`` keys the
image entries only: above, each clip runs 4 settings and the still 2. A CSV of clips has the columns
``video``, ``prompt`` and ``edits`` (prompts separated by ``|``), or ``image`` in place of those three,
and optionally ``name`` and the span keys. Unknown keys anywhere are refused with the closest valid one.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vidsynth.config.loader import config_from_layers, load_config
from vidsynth.errors import VidSynthError
from vidsynth.evaluation import DEFAULT_CLIP_MODEL
from vidsynth.hub import is_repo_id, require_model
from vidsynth.testing.tiny_models import resolve_model

EDITS_SEPARATOR = "|"  # between the prompts of a CSV's edits column
SPAN_KEYS = ("n_sample_frames", "sample_start_idx", "sample_frame_rate", "sample_end_idx", "width", "height")


GRID_PARTS = ("train", "edit", "animate")  # what a grid key's first word may name


@dataclass
class ClipEntry:
    """A clip to tune and edit (``video``, ``prompt``, ``edits``, span keys), or a still to animate (``image``)."""

    video: str | None = None  # the clip (any format ffmpeg reads); relative paths are from the current folder
    image: str | None = None  # or a still (PNG, JPEG, ...), animated with the animate settings instead
    prompt: str | None = None  # what the clip shows: the tuning prompt
    edits: list[str] = field(default_factory=list)  # the edit prompts
    name: str | None = None  # the entry's folder under cells/ (default: the video's or image's file name)
    # The span, as train_data's keys (null: the tuning config's).
    n_sample_frames: int | None = None
    sample_start_idx: int | None = None
    sample_frame_rate: int | None = None
    sample_end_idx: int | None = None
    width: int | None = None
    height: int | None = None

    # inference.py's names for the span keys are accepted too.
    ALIASES: ClassVar[dict[str, str]] = {
        "num_frames": "n_sample_frames",
        "start_frame": "sample_start_idx",
        "stride": "sample_frame_rate",
    }

    def __post_init__(self):
        if (self.video is None) == (self.image is None):
            raise VidSynthError(
                f"a clip entry gives {'both video and image' if self.video else 'neither video nor image'}. "
                "Give video: CLIP (with prompt and edits) to tune and edit it, or image: STILL to animate it"
            )
        if self.image is not None:
            given = [key for key in ("prompt", *SPAN_KEYS) if getattr(self, key) is not None]
            if given or self.edits:
                raise VidSynthError(
                    f"clip entry image {self.image} has {', '.join(given + ['edits'] * bool(self.edits))}: a "
                    "still is animated, not tuned or edited. Drop them; set the animation under animate: "
                    "(or grid animate.KEY)"
                )
            return
        if self.prompt is None:
            raise VidSynthError(f"clip {self.video} has no prompt. Give it prompt: (what the clip shows)")
        if not self.edits or not all(isinstance(p, str) and p.strip() for p in self.edits):
            raise VidSynthError(
                f"clip {self.video} has no edit prompts (or an empty one). Give it edits: [prompt, ...]"
            )

    @property
    def source(self) -> str:
        """The entry's video or image."""
        return self.video or self.image

    def train_data(self) -> dict:
        """The ``train_data`` keys this entry sets: the clip, its caption and the span keys it gives."""
        span = {key: getattr(self, key) for key in SPAN_KEYS if getattr(self, key) is not None}
        return {"video_path": str(Path(self.video).absolute()), "prompt": self.prompt, **span}


@dataclass
class ExperimentConfig:
    clips: Any = "???"  # a list of entries (video, prompt, edits, span keys; or image), or the path of a CSV of them
    train: Any = field(default_factory=dict)  # the path of a train.py YAML, or its keys inline
    edit: dict[str, Any] = field(default_factory=dict)  # inference.py config keys every edit uses
    animate: dict[str, Any] = field(default_factory=dict)  # vidsynth.animate config keys every animation uses
    # train.KEY, edit.KEY or animate.KEY: a list of values each; their product runs (train.* and edit.* for
    # the video entries, animate.* for the image entries)
    grid: dict[str, Any] = field(default_factory=dict)
    clip_model: str = DEFAULT_CLIP_MODEL  # CLIP for the metrics: a hub id or a local folder
    out: str = "outputs/experiment"  # the experiment folder: cells/, results.md, results.csv, plots/

    def __post_init__(self):
        for key, values in self.grid.items():  # typed Any, so that a single value gets this message
            if not isinstance(values, list) or not values:
                example = f"{values}, ..." if isinstance(values, str | int | float) else "first, second"
                raise VidSynthError(f"grid entry {key} must be a non-empty list of values, e.g. {key}: [{example}]")
            if key.split(".", 1)[0] not in GRID_PARTS or "." not in key:
                raise VidSynthError(
                    f"grid key '{key}' must name a tuning, editing or animation key: train.KEY, edit.KEY or "
                    "animate.KEY (e.g. train.learning_rate, edit.guidance_scale, animate.motion_bucket_id)"
                )


def read_clips_csv(path: Path) -> list[dict]:
    """Clip entries from a CSV: one row each, ``edits`` split at ``|``, empty cells left out."""
    if not path.is_file():
        raise VidSynthError(f"clips file {path} does not exist. Give clips as a list, or the path of a CSV")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    entries = []
    for row in rows:
        entry = {key.strip(): value.strip() for key, value in row.items() if key and value and value.strip()}
        if "edits" in entry:
            entry["edits"] = [p.strip() for p in entry["edits"].split(EDITS_SEPARATOR) if p.strip()]
        entries.append(entry)  # span keys stay text here: the typed config converts (or refuses) them
    if not entries:
        raise VidSynthError(
            f"clips file {path} has no rows. Give a header (video,prompt,edits, or image) and a row per clip"
        )
    return entries


def check_clip_model(clip_model: str) -> None:
    """The CLIP model is a folder with a config, or a hub id in the local cache or on a hub that answers.

    Checked without loading it: CLIP is loaded by each cell's own process, which scores that cell. ``tiny``
    (the offline tiny CLIP) is built here the first time, so the cells find it built.
    """
    folder = Path(resolve_model(clip_model, "clip")).expanduser()
    if folder.exists():
        if not (folder / "config.json").is_file():
            raise VidSynthError(
                f"the CLIP model folder {folder} for the metrics has no config.json. Set clip_model to a CLIP "
                "checkpoint folder (config.json, weights, tokenizer files)"
            )
        return
    if not is_repo_id(clip_model):
        raise VidSynthError(
            f"the CLIP model {clip_model!r} for the metrics is neither a folder nor a hub id. Set clip_model to a "
            f"local CLIP folder or a hub id such as {DEFAULT_CLIP_MODEL}"
        )
    fix = f"Set clip_model to a local CLIP folder, or download it while online: hf download {clip_model}"
    require_model(clip_model, "config.json", "CLIP model", fix)


def load_experiment(path: str | Path, overrides: list[str] = (), out: str | None = None) -> tuple:
    """The experiment config and its clip entries, every key checked."""
    config = load_config(ExperimentConfig, [path], overrides)
    if out:
        config.out = out
    if Path(config.clip_model).expanduser().exists():  # cells may run elsewhere (Ray): give them the full path
        config.clip_model = str(Path(config.clip_model).expanduser().absolute())
    clips = config.clips
    if isinstance(clips, str):
        clips = read_clips_csv(Path(clips))
    if not isinstance(clips, list) or not clips:
        raise VidSynthError(f"'clips' in {path} must be a list of clip entries or the path of a CSV of them")
    entries = [config_from_layers(ClipEntry, [(entry, f"clips[{i}] of {path}")]) for i, entry in enumerate(clips)]
    return config, entries
