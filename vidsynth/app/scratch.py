"""The From scratch tab's jobs: train a small video model on footage, then sample it with labels.

A training job is ``python -m vidsynth.scratch train --config FILE`` (the page's values over the shapes
config, resolved and checked when the job is asked for) into
``<outputs>/scratch/<name>``; with the shapes demo set it first runs ``python -m vidsynth.scratch
make-data --kind shapes`` into ``<outputs>/scratch-data/shapes`` (once: later jobs reuse it). A sampling
job is ``python -m vidsynth.scratch sample --run RUN --labels ... --out <run>/generated/<time>``. The
footage is a clip the app keeps (an upload or a listed clip) or that demo set, the label CSV one the app
kept from an upload: the commands only ever read files the app wrote, and every path in their argv is
one the app made.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vidsynth.app.clips import digest
from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.commands import command
from vidsynth.config.loader import load_config
from vidsynth.errors import VidSynthError
from vidsynth.naming import slugify
from vidsynth.scratch.config import ScratchConfig
from vidsynth.scratch.layout import WEIGHTS_FILE
from vidsynth.scratch.train import open_footage
from vidsynth.workspace import new_output_folder

SHAPES = "shapes demo set"  # the footage choice that makes (once) and trains on the synthetic shapes set
_LABELS = re.compile(r"^\s*[\w-]+(?:\s*:\s*\d+)?(?:\s*,\s*[\w-]+\s*:\s*\d+)*\s*$")


@dataclass(frozen=True)
class ScratchForm:
    """The tab's training values: what to train on and the config keys the page offers."""

    footage: Path  # a video the app keeps, or the shapes set's videos/
    labels: Path | None  # a label CSV the app kept; None: the shapes set's own, or unconditional
    run: Path  # <outputs>/scratch/<name>
    steps: int  # max_train_steps
    learning_rate: float
    num_frames: int  # data.num_frames
    frame_skip: int  # data.frame_skip
    seed: int
    shapes: bool = False  # make the shapes set first if it is not there


def keep_labels(upload: Path, folder: Path) -> Path:
    """An uploaded label file (checked against the footage) kept in ``folder``, named after its name and content."""
    kept = folder / f"{slugify(upload.stem, max_len=40)}-{digest(upload)}{upload.suffix.lower()}"
    if kept.is_file():
        kept.touch()
    else:
        with atomic_path(kept) as partial:
            shutil.copyfile(upload, partial)
    return kept


def check_labels_text(text: str | None) -> str:
    """The sampling labels as typed (``left:8,right:8``, or one label name for the whole clip), spaces removed;
    refused when they are not written that way (so they are never a file's name)."""
    text = (text or "").strip()
    if text and not _LABELS.match(text):
        raise VidSynthError(
            f"labels {text!r} are not NAME:FRAMES pairs. Write e.g. left:8,right:8, or one name for the whole clip"
        )
    return re.sub(r"\s+", "", text)


def train_overrides(form: ScratchForm) -> list[str]:
    """The ``key=value`` overrides of the training command for ``form``."""
    labels = "null" if form.labels is None else str(form.labels)
    return [
        f"data.path={form.footage}",
        f"data.labels={labels}",
        f"data.num_frames={form.num_frames}",
        f"data.frame_skip={form.frame_skip}",
        f"output_dir={form.run}",
        f"max_train_steps={form.steps}",
        f"learning_rate={form.learning_rate}",
        f"seed={form.seed}",
    ]


def scratch_defaults(config: Path) -> ScratchConfig:
    """The config runs start from: ``config`` (the shapes config) if it is there, else the schema's defaults."""
    return load_config(ScratchConfig, [config] if config.is_file() else [], ["data.path=footage"])


def training_config(config: Path, form: ScratchForm) -> ScratchConfig:
    """The config ``python -m vidsynth.scratch train`` will run for ``form``, after the checks it makes before
    building a model: the keys and values, then the footage and its labels as the data loader reads them (the
    shapes set is made by the job, so it is not there to check yet)."""
    cfg = load_config(ScratchConfig, [config] if config.is_file() else [], train_overrides(form))
    if not form.shapes:
        open_footage(cfg)
    return cfg


def is_trained(run: Path) -> bool:
    """Whether ``run`` has a stage to sample from (its weights are written last)."""
    return any((stage / WEIGHTS_FILE).is_file() for stage in run.iterdir() if stage.is_dir())


class ScratchTrainTask:
    """(make the shapes set, then) ``python -m vidsynth.scratch train --config FILE``; a run folder it created is
    removed if the job did not finish."""

    kind = "scratch-train"

    def __init__(self, form: ScratchForm, config: Path, created: bool = False):
        self.form, self.config = form, Path(config)  # the resolved config, saved when the job was asked for
        self.output = form.run
        source = "the shapes demo set" if form.shapes else form.footage.name
        self.title = f"train {form.run.name} from scratch on {source}, {form.steps} steps"
        self._created = created

    def spec(self) -> dict:
        form = {key: str(value) if isinstance(value, Path) else value for key, value in vars(self.form).items()}
        return {"form": form, "config": str(self.config), "created": self._created}

    @classmethod
    def from_spec(cls, spec: dict) -> "ScratchTrainTask":
        form = dict(spec["form"])
        for key in ("footage", "run"):
            form[key] = Path(form[key])
        form["labels"] = Path(form["labels"]) if form["labels"] else None
        return cls(ScratchForm(**form), Path(spec["config"]), spec["created"])

    def begin(self) -> list[tuple[str, list[str]]]:
        if self.output.exists():
            raise VidSynthError(f"{self.output} was made while this job waited. Train again with another run name")
        self._created = True
        commands = []
        shapes = self.form.footage.parent
        if self.form.shapes and not shapes.exists():  # made whole or not at all
            make = command("scratch", "make-data", "--kind", "shapes", "--out", str(shapes))
            commands.append(("making the shapes set", make))
        return [*commands, ("training", command("scratch", "train", "--config", str(self.config)))]

    def finish(self, succeeded: bool) -> None:
        if not succeeded and self._created:
            shutil.rmtree(self.output, ignore_errors=True)
        self.config.unlink(missing_ok=True)


@dataclass(frozen=True)
class SampleForm:
    """The tab's sampling values (``python -m vidsynth.scratch sample``'s flags)."""

    run: Path
    labels: str  # "left:8,right:8", one name, or "" (unconditional)
    num: int
    steps: int
    seed: int
    guidance: float = 1.0  # classifier-free guidance scale (1: none)


def sample_args(form: SampleForm, out: Path) -> list[str]:
    """``python -m vidsynth.scratch sample`` and its flags for ``form``, writing into ``out``."""
    args = command("scratch", "sample", "--run", str(form.run), "--out", str(out))
    args += ["--num", str(form.num), "--steps", str(form.steps), "--seed", str(form.seed)]
    args += ["--guidance", str(form.guidance)]
    if form.labels:
        args += ["--labels" if ":" in form.labels else "--label", form.labels]
    return args


class ScratchSampleTask:
    """``python -m vidsynth.scratch sample`` into ``<run>/generated/<time>`` (decided when it begins)."""

    kind = "scratch-sample"

    def __init__(self, form: SampleForm):
        self.form = form
        self.title = f"sample {form.run.name}" + (f" with {form.labels}" if form.labels else "")
        self.output: Path | None = None

    def spec(self) -> dict:
        return {**vars(self.form), "run": str(self.form.run)}

    @classmethod
    def from_spec(cls, spec: dict) -> "ScratchSampleTask":
        return cls(SampleForm(**{**spec, "run": Path(spec["run"])}))

    def begin(self) -> list[tuple[str, list[str]]]:
        self.output = new_output_folder(None, self.form.run / "generated")
        return [("sampling", sample_args(self.form, self.output))]

    def finish(self, succeeded: bool) -> None:
        if self.output is not None:
            remove_stale_partials(self.output.parent)


SCRATCH_KINDS = {ScratchTrainTask.kind: ScratchTrainTask, ScratchSampleTask.kind: ScratchSampleTask}
