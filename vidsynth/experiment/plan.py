"""An experiment resolved into jobs: one tuning per clip x tuning setting, one edit per clip x setting.

Every cell's ``train.py`` and ``inference.py`` config is built (and so checked) here, before anything
runs: a typo in the tuning file, the editing keys or the grid fails the whole experiment at once.
A clip that does not exist is not checked here: that fails its own cells when they run.

Folder names carry a hash of the complete config they were made with, so a changed setting (in the
grid, the tuning file or a clip's span) makes a new folder and never reuses a stale result. The
layout is the one ``train.py`` and ``inference.py`` write::

    out/cells/<clip>/<tuning setting>/                 a train.py output folder (or "untuned": img2img only)
    out/cells/<clip>/<tuning setting>/edits/<edit setting>/   an inference.py output folder, plus cell.json
"""

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsynth.config import InferenceConfig, TrainConfig
from vidsynth.config.loader import config_from_layers, read_yaml
from vidsynth.errors import VidSynthError
from vidsynth.experiment.config import ClipEntry, ExperimentConfig
from vidsynth.naming import unique_slugs

UNTUNED = "untuned"  # the tuning folder of clips whose edits need no tuning (the img2img baseline)
# Editing keys each cell sets itself: the tuned run (or base and clip), the prompts and the output folder.
CELL_EDIT_KEYS = ("run", "pipeline", "video", "prompts", "out")


@dataclass(frozen=True)
class TuningJob:
    """One ``train.py`` run: a clip with one tuning setting (``config`` None: nothing to tune)."""

    clip: str
    folder: Path
    config: TrainConfig | None


@dataclass(frozen=True)
class EditJob:
    """One ``inference.py`` run of a clip's edit prompts in its tuning folder, then their metrics."""

    clip: str
    folder: Path
    tuning: TuningJob
    config: InferenceConfig


@dataclass(frozen=True)
class Cell:
    """A clip with one setting (a value for every grid key): rows of the table, made by one edit job."""

    clip: str
    setting: dict[str, Any]
    label: str
    edit: EditJob


@dataclass(frozen=True)
class Plan:
    experiment: ExperimentConfig
    out: Path
    cells: list[Cell]

    @property
    def tunings(self) -> list[TuningJob]:
        """Each tuning once, in the order of the cells."""
        return list({cell.edit.tuning.folder: cell.edit.tuning for cell in self.cells}.values())

    @property
    def edits(self) -> list[EditJob]:
        """Each edit job once (cells whose configs are the same share one)."""
        return list({cell.edit.folder: cell.edit for cell in self.cells}.values())

    def edits_of(self, tuning: TuningJob) -> list[EditJob]:
        return [edit for edit in self.edits if edit.tuning.folder == tuning.folder]


def _nested(dotted: dict[str, Any]) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    tree: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def _digest(config: Any, leave_out: tuple[str, ...]) -> str:
    data = {k: v for k, v in dataclasses.asdict(config).items() if k not in leave_out}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _folder_name(values: dict[str, Any], digest: str) -> str:
    """``learning_rate=0.0001,max_train_steps=300-1a2b3c4d``: the grid values it has, then the config's hash."""
    words = ",".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in values.items()) or "default"
    safe = re.sub(r"[^\w.=,+-]", "-", words)[:80]
    return f"{safe}-{digest}"


def _label(setting: dict[str, Any]) -> str:
    return ", ".join(f"{key.split('.', 1)[1]}={value}" for key, value in setting.items()) or "default"


def _grid_source(setting: dict[str, Any], part: str) -> str:
    """How messages name the grid values of one part (train or edit): ``grid (train.learning_rate=fast)``."""
    return f"grid ({', '.join(f'{key}={value}' for key, value in setting.items() if key.startswith(part))})"


def _train_layer(train: Any) -> tuple[dict, str]:
    if isinstance(train, str):
        return read_yaml(train), train
    if isinstance(train, dict):
        return train, "the experiment's train keys"
    raise VidSynthError("'train' must be the path of a train.py YAML or a mapping of its keys")


def _check_cell_keys(edit: dict, source: str) -> None:
    for key in edit:
        if key in CELL_EDIT_KEYS:
            raise VidSynthError(
                f"editing key '{key}' in {source} is set per cell (the tuned run, the clip, its edits, the "
                "cell's folder). Remove it; give clips and their edits under clips"
            )


def _img2img_span(train: TrainConfig) -> dict:
    """The frames a tuning config would tune on, as editing keys, for the baseline that skips tuning."""
    data = train.train_data
    if data.window_sampling == "fixed":
        num_frames = data.n_sample_frames
    elif data.sample_end_idx is not None:
        num_frames = len(range(data.sample_start_idx, data.sample_end_idx, data.sample_frame_rate))
    else:
        num_frames = "all"
    return {
        "base": train.pretrained_model_path,
        "video": data.video_path,
        "start_frame": data.sample_start_idx,
        "stride": data.sample_frame_rate,
        "num_frames": num_frames,
        "width": data.width,
        "height": data.height,
    }


def _absolute_if_local(path: str) -> str:
    """A folder that exists here, made absolute (jobs may run elsewhere); a hub id as it is."""
    return str(Path(path).absolute()) if Path(path).exists() else path


def make_plan(experiment: ExperimentConfig, clips: list[ClipEntry]) -> Plan:
    """Every cell of clips x grid, with its tuning and edit configs built and checked."""
    out = Path(experiment.out).absolute()
    train_layer = _train_layer(experiment.train)
    _check_cell_keys(experiment.edit, "the experiment's edit keys")
    _check_cell_keys({key.split(".", 1)[1]: 0 for key in experiment.grid if key.startswith("edit.")}, "grid")
    keys = list(experiment.grid)
    settings = [dict(zip(keys, values, strict=True)) for values in itertools.product(*experiment.grid.values())]
    names = unique_slugs([clip.name or Path(clip.video).stem for clip in clips])
    cells = []
    for clip, name in zip(clips, names, strict=True):
        for setting in settings:
            train_values = {k.split(".", 1)[1]: v for k, v in setting.items() if k.startswith("train.")}
            edit_values = {k.split(".", 1)[1]: v for k, v in setting.items() if k.startswith("edit.")}
            train = config_from_layers(
                TrainConfig,
                [
                    train_layer,
                    ({"train_data": clip.train_data()}, f"clip {name}"),
                    (_nested(train_values), _grid_source(setting, "train.")),
                    ({"validation_data": {"prompts": []}, "resume_from_checkpoint": "latest"}, "the experiment"),
                ],
            )
            train.pretrained_model_path = _absolute_if_local(train.pretrained_model_path)
            edit_layers = [
                (experiment.edit, "the experiment's edit keys"),
                (_nested(edit_values), _grid_source(setting, "edit.")),
            ]
            probe = config_from_layers(InferenceConfig, edit_layers)
            tuned = probe.method == "tuneavideo" or probe.compare
            if tuned:
                tune_name = _folder_name(train_values, _digest(train, ("output_dir", "resume_from_checkpoint")))
                tuning = TuningJob(name, out / "cells" / name / tune_name, None)
                start = {"run": str(tuning.folder)}
            else:
                tuning = TuningJob(name, out / "cells" / name / UNTUNED, None)
                start = _img2img_span(train)
            edit = config_from_layers(InferenceConfig, [(start, "the experiment"), *edit_layers])
            edit.prompts = list(clip.edits)
            edit_folder = tuning.folder / "edits" / _folder_name(edit_values, _digest(edit, ("out", "run")))
            edit.out = str(edit_folder)
            if tuned:
                train.output_dir = str(tuning.folder)
                tuning = dataclasses.replace(tuning, config=train)
            job = EditJob(name, edit_folder, tuning, edit)
            cells.append(Cell(name, setting, _label(setting), job))
    return Plan(experiment, out, cells)
