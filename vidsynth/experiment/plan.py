"""An experiment resolved into jobs: one tuning per clip x tuning setting, one edit per clip x setting,
one animation per image entry x animate setting.

Every cell's ``train.py``, ``inference.py`` and ``vidsynth.animate`` config is built (and so checked)
here, before anything runs: a typo in the tuning file, the editing or animate keys or the grid fails the
whole experiment at once. A clip or still that does not exist is not checked here: that fails its own
cells when they run. The ``train.*`` and ``edit.*`` grid keys make the settings of the video entries,
the ``animate.*`` keys those of the image entries: neither multiplies the other's cells.

Folder names carry a hash of the complete config they were made with, so a changed setting (in the
grid, the tuning file or a clip's span) makes a new folder and never reuses a stale result. The
layout is the one ``train.py`` and ``inference.py`` write::

    out/cells/<clip>/<tuning setting>/                 a train.py output folder (or "untuned": img2img only)
    out/cells/<clip>/<tuning setting>/edits/<edit setting>/   an inference.py output folder, plus cell.json
    out/cells/<image>/animations/<animate setting>/           a vidsynth.animate output folder, plus cell.json
"""

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsynth.config import AnimateConfig, InferenceConfig, TrainConfig
from vidsynth.config.loader import config_from_layers, read_yaml
from vidsynth.errors import VidSynthError
from vidsynth.experiment.config import ClipEntry, ExperimentConfig
from vidsynth.naming import unique_slugs

UNTUNED = "untuned"  # the tuning folder of clips whose edits need no tuning (the img2img baseline)
ANIMATIONS = "animations"  # an image entry's folder of animations (its stand-in tuning: nothing to tune)
# Editing keys each cell sets itself: the tuned run (or base and clip), the prompts and the output folder.
CELL_EDIT_KEYS = ("run", "pipeline", "video", "prompts", "out")
# Animate keys each image cell sets itself (the still, the output folder), or that only a clip would use.
CELL_ANIMATE_KEYS = ("image", "from_edit", "video", "start", "end", "extend", "out")


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
    kind: str = "edit"


@dataclass(frozen=True)
class AnimateJob:
    """One ``vidsynth.animate`` run of an image entry's still into its folder, then its metrics.

    Its ``tuning`` has nothing to tune (``config`` None), so it runs on the same path as an img2img edit.
    """

    clip: str
    folder: Path
    tuning: TuningJob
    config: AnimateConfig
    kind: str = "animate"


@dataclass(frozen=True)
class Cell:
    """An entry with one setting (a value for each of its grid keys): rows of the table, made by one job
    (``edit``: an edit job, or for an image entry an animate job)."""

    clip: str
    setting: dict[str, Any]
    label: str
    edit: EditJob | AnimateJob


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
    def edits(self) -> list[EditJob | AnimateJob]:
        """Each edit (or animate) job once (cells whose configs are the same share one)."""
        return list({cell.edit.folder: cell.edit for cell in self.cells}.values())

    def edits_of(self, tuning: TuningJob) -> list[EditJob | AnimateJob]:
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


def grid_text(value: Any) -> str:
    """A grid value as the experiment file spells it: ``null`` for None (``train.lora_rank: [null, 4]``)."""
    return "null" if value is None else str(value)


def _folder_name(values: dict[str, Any], digest: str) -> str:
    """``learning_rate=0.0001,max_train_steps=300-1a2b3c4d``: the grid values it has, then the config's hash."""
    words = ",".join(f"{key.rsplit('.', 1)[-1]}={grid_text(value)}" for key, value in values.items()) or "default"
    safe = re.sub(r"[^\w.=,+-]", "-", words)[:80]
    return f"{safe}-{digest}"


def _label(setting: dict[str, Any]) -> str:
    return ", ".join(f"{key.split('.', 1)[1]}={grid_text(value)}" for key, value in setting.items()) or "default"


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


def _settings(grid: dict[str, list], parts: tuple[str, ...]) -> list[dict[str, Any]]:
    """The product of the grid keys of ``parts`` (train and edit, or animate): one dict per setting."""
    keys = [key for key in grid if key.split(".", 1)[0] in parts]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[key] for key in keys))]


def _values(setting: dict[str, Any], part: str) -> dict[str, Any]:
    """The setting's values of one part, by their key in that part's config: ``{"learning_rate": 1e-4}``."""
    return {k.split(".", 1)[1]: v for k, v in setting.items() if k.startswith(part)}


def _edit_cell(experiment: ExperimentConfig, train_layer: tuple, clip: ClipEntry, name: str, setting: dict) -> Cell:
    """A video entry's cell: its tuning (or none, for img2img) and its edit job, both configs built and checked."""
    out = Path(experiment.out).absolute()
    train_values, edit_values = _values(setting, "train."), _values(setting, "edit.")
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
    for key in ("mask_video", "background"):  # files (not a colour or blur) read by the cell, wherever it runs
        if getattr(edit, key) and not getattr(edit, key).startswith("#") and getattr(edit, key) != "blur":
            setattr(edit, key, _absolute_if_local(getattr(edit, key)))
    edit_folder = tuning.folder / "edits" / _folder_name(edit_values, _digest(edit, ("out", "run")))
    edit.out = str(edit_folder)
    if tuned:
        train.output_dir = str(tuning.folder)
        tuning = dataclasses.replace(tuning, config=train)
    return Cell(name, setting, _label(setting), EditJob(name, edit_folder, tuning, edit))


def _animate_configs(experiment: ExperimentConfig, settings: list[dict]) -> list[AnimateConfig]:
    """Each animate setting's config without its still: built (and so checked) once, whether or not a still uses it."""
    _check_animate_keys(experiment.animate, "the experiment's animate keys")
    _check_animate_keys(_values(experiment.grid, "animate."), "grid")
    configs = []
    for setting in settings:
        layers = [
            (experiment.animate, "the experiment's animate keys"),
            (_values(setting, "animate."), _grid_source(setting, "animate.")),
        ]
        config = config_from_layers(AnimateConfig, layers)
        config.model = _absolute_if_local(config.model)
        configs.append(config)
    return configs


def _check_animate_keys(animate: dict, source: str) -> None:
    for key in animate:
        if key in CELL_ANIMATE_KEYS:
            raise VidSynthError(
                f"animate key '{key}' in {source} is set per cell (the entry's still, the cell's folder), and "
                "experiments animate stills only. Remove it; give stills as clips entries with image:"
            )


def _animate_cell(out: Path, clip: ClipEntry, name: str, setting: dict, config: AnimateConfig) -> Cell:
    """An image entry's cell: the animate job of its still with one animate setting."""
    tuning = TuningJob(name, out / "cells" / name / ANIMATIONS, None)
    config = dataclasses.replace(config, image=str(Path(clip.image).absolute()))
    config.check_input()
    folder = tuning.folder / _folder_name(_values(setting, "animate."), _digest(config, ("out",)))
    config.out = str(folder)
    return Cell(name, setting, _label(setting), AnimateJob(name, folder, tuning, config))


def make_plan(experiment: ExperimentConfig, clips: list[ClipEntry]) -> Plan:
    """Every cell of the video entries x their grid settings and the image entries x theirs, configs checked."""
    out = Path(experiment.out).absolute()
    train_layer = _train_layer(experiment.train)
    _check_cell_keys(experiment.edit, "the experiment's edit keys")
    _check_cell_keys(_values(experiment.grid, "edit."), "grid")
    edit_settings = _settings(experiment.grid, ("train", "edit"))
    animate_settings = _settings(experiment.grid, ("animate",))
    animate_configs = _animate_configs(experiment, animate_settings)
    names = unique_slugs([clip.name or Path(clip.source).stem for clip in clips])
    cells = []
    for clip, name in zip(clips, names, strict=True):
        if clip.image is not None:
            for setting, config in zip(animate_settings, animate_configs, strict=True):
                cells.append(_animate_cell(out, clip, name, setting, config))
        else:
            cells += [_edit_cell(experiment, train_layer, clip, name, setting) for setting in edit_settings]
    return Plan(experiment, out, cells)
