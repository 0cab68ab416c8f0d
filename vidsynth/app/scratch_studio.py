"""What the From scratch tab's controls do, apart from the page: its part of the app's state.

Footage is one of :meth:`ScratchStudio.footage_choices` (the shapes demo set, or a clip the app keeps),
a label CSV an upload the app keeps in ``<outputs>/scratch-labels/``, a run one of the trained ones in
``<outputs>/scratch/``: a name the page sends is looked up in those lists, never used as a path. A
request is checked as the command checks it (the config's keys and types, the footage and labels as
the data loader reads them) before it is queued, so a mistake is one line on the page, not a failed job.
"""

import dataclasses
import json
import uuid
from pathlib import Path

from vidsynth.app.clips import clip_path, list_clips
from vidsynth.app.jobs import Job, JobQueue
from vidsynth.app.scratch import (
    SCRATCH_KINDS,
    SHAPES,
    SampleForm,
    ScratchForm,
    ScratchSampleTask,
    ScratchTrainTask,
    check_labels_text,
    is_trained,
    keep_labels,
    scratch_defaults,
    training_config,
)
from vidsynth.app.served import RESULT_SUFFIXES
from vidsynth.app.uploads import check_upload
from vidsynth.config.loader import save_config
from vidsynth.errors import VidSynthError
from vidsynth.naming import slugify
from vidsynth.scratch.request import frame_labels
from vidsynth.scratch.sample import read_run
from vidsynth.workspace import CONFIGS

SAMPLES_FILE = "samples.json"  # the sampler's sidecar, written last


def number(value, key: str, kind: type = int) -> int | float:
    """A number field of the tab as ``kind``; a blank one is refused, naming its config key or flag."""
    if value is None or value == "":
        raise VidSynthError(f"{key} is empty. Enter a number")
    return kind(value)


def _visible_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []


class ScratchStudio:
    """The tab's state on ``outputs``: runs in ``scratch/``, the shapes set in ``scratch-data/shapes``, label
    CSVs in ``scratch-labels/``; jobs on the app's ``queue``; ``config``: the config the runs start from."""

    KINDS = SCRATCH_KINDS  # the jobs it queues, for the queue to rebuild them

    def __init__(
        self, outputs: Path, queue: JobQueue, max_upload_mb: int, config: Path = CONFIGS / "scratch" / "shapes.yaml"
    ):
        self.outputs, self.queue, self.config, self.max_upload_mb = Path(outputs), queue, Path(config), max_upload_mb
        self.clips, self.runs_folder = self.outputs / "clips", self.outputs / "scratch"
        self.shapes, self.labels_folder = self.outputs / "scratch-data" / "shapes", self.outputs / "scratch-labels"
        cfg = scratch_defaults(self.config)
        self.defaults = {"steps": cfg.max_train_steps, "learning_rate": cfg.learning_rate, "seed": cfg.seed}
        self.defaults |= {"frames": cfg.data.num_frames, "frame_skip": cfg.data.frame_skip}

    # ------------------------------------------------------------ training

    def footage_choices(self) -> list[str]:
        return [SHAPES, *list_clips(self.clips)]

    def train(self, footage, labels_upload, run_name, steps, learning_rate, frames, frame_skip, seed) -> Job:
        """Check a training request as ``python -m vidsynth.scratch train`` would, then queue it."""
        if footage == SHAPES:
            if labels_upload:
                raise VidSynthError("the shapes demo set brings its own labels. Clear the label CSV, or pick a clip")
            path, labels = self.shapes / "videos", self.shapes / "labels.csv"
        else:
            path = clip_path(self.clips, footage)
            labels = Path(labels_upload) if labels_upload else None  # kept once the request passes its checks
            if labels:
                check_upload(labels, self.max_upload_mb)
        name = slugify((run_name or "").strip() or Path(footage).stem)
        form = ScratchForm(
            footage=path,
            labels=labels,
            run=self.runs_folder / name,
            steps=number(steps, "max_train_steps"),
            learning_rate=number(learning_rate, "learning_rate", float),
            num_frames=number(frames, "data.num_frames"),
            frame_skip=number(frame_skip, "data.frame_skip"),
            seed=number(seed, "seed"),
            shapes=footage == SHAPES,
        )
        taken = [j for j in self.queue.jobs() if j.active and j.task.output == form.run]
        if form.run.exists() or taken:
            raise VidSynthError(f"there is already a run {name!r} in {self.runs_folder}. Give this run another name")
        config = training_config(self.config, form)
        if labels and not form.shapes:
            self.labels_folder.mkdir(parents=True, exist_ok=True)
            form = dataclasses.replace(form, labels=keep_labels(labels, self.labels_folder))
            config.data.labels = str(form.labels)
        config_file = save_config(config, self.outputs / ".queue" / f"scratch-{uuid.uuid4().hex[:12]}.yaml")
        return self.queue.submit(ScratchTrainTask(form, config_file))

    # ------------------------------------------------------------ sampling

    def runs(self) -> list[str]:
        """The trained runs of ``scratch/``, the newest first."""
        trained = [p for p in _visible_dirs(self.runs_folder) if is_trained(p)]
        return [p.name for p in sorted(trained, key=lambda p: p.stat().st_mtime, reverse=True)]

    def run_path(self, name: str | None) -> Path:
        if not name:
            raise VidSynthError("no run chosen. Train one first, or pick a trained run")
        if name not in self.runs():
            raise VidSynthError(f"there is no trained run {name!r}. Pick one from the list")
        return self.runs_folder / name

    def sample(self, run, labels, num, steps, seed, guidance=1.0) -> Job:
        """Check a sampling request as ``python -m vidsynth.scratch sample`` would (the run, the labels' names,
        guidance), then queue it. Labels are only ever names typed here, never a file."""
        folder = self.run_path(run)
        labels = check_labels_text(labels)
        _, config, footage = read_run(folder)
        if footage["label_dim"] is not None:
            raise VidSynthError(
                f"run {run} takes a label vector per frame, which this tab cannot send. Sample it with "
                "python -m vidsynth.scratch sample --labels FILE"
            )
        runs_of_names = labels if ":" in labels else None
        one_label = labels if labels and not runs_of_names else None
        frame_labels(runs_of_names, one_label, footage, config.data.num_frames, footage["fps"])
        form = SampleForm(
            folder, labels, number(num, "--num"), number(steps, "--steps"), number(seed, "--seed"),
            number(guidance, "--guidance", float),
        )  # fmt: skip
        if not form.guidance >= 1:
            raise VidSynthError(f"--guidance must be 1 (no guidance) or more, got {form.guidance:g}")
        if form.guidance > 1 and not (footage["class_names"] and config.label_dropout):
            raise VidSynthError(f"run {run} was not trained for guidance (class labels with label_dropout). Set 1")
        return self.queue.submit(ScratchSampleTask(form))

    def samples(self, run: str | None) -> list[str]:
        """The finished sample folders of ``run`` (``generated/<time>``), the newest first."""
        if not run or run not in self.runs():
            return []
        done = [p for p in _visible_dirs(self.runs_folder / run / "generated") if (p / SAMPLES_FILE).is_file()]
        return [p.name for p in sorted(done, key=lambda p: (p / SAMPLES_FILE).stat().st_mtime, reverse=True)]

    def sample_files(self, run: str | None, name: str | None) -> tuple[list[tuple[str, Path]], Path | None, list]:
        """The MP4s of a sample folder with their captions, its GIF grid and every result file."""
        if name not in self.samples(run):
            raise VidSynthError(f"run {run} has no samples {name!r}. Pick them from the list")
        folder = self.runs_folder / run / "generated" / name
        captions = _captions(folder / SAMPLES_FILE)
        videos = [(captions.get(p.name, p.stem), p) for p in sorted(folder.glob("*.mp4"))]
        grid = folder / "grid.gif"
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in RESULT_SUFFIXES)
        return videos, grid if grid.is_file() else None, files


def _captions(sidecar: Path) -> dict[str, str]:
    """Each MP4's labels, from the sampler's sidecar (none where it says nothing of them)."""
    try:
        data = json.loads(sidecar.read_text())
        return {item["file"]: item["labels"] for item in data["samples"]}
    except (KeyError, TypeError, ValueError):
        return {}
