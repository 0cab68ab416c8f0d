"""Which model an edit loads, found from ``--run``, ``--pipeline`` or ``--base`` before anything loads.

:func:`resolve_model_source` names the model's shape once (a :class:`ModelSource` for
:func:`~vidsynth.pipelines.loading.load_pipeline`), checks that its files are there, and reads what
the tuning run saved next to it: the ``train_data`` of its ``config.yaml`` (VidSynth's and the
original Tune-A-Video's have the same keys), the defaults of an edit's clip options. Paths a saved
config names are taken as they are, else relative to the run's folder, so a run can be moved.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from vidsynth.errors import VidSynthError
from vidsynth.models.trainable import read_trained_metadata
from vidsynth.pipelines.loading import ModelSource, is_tuneavideo_folder
from vidsynth.run_folder import CONFIG_FILE, RESULT_FILE
from vidsynth.testing.tiny_models import TINY, resolve_model

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class ResolvedModel:
    """The model to load, what it was tuned on, and the plain SD model of the per-frame baseline."""

    source: ModelSource
    tuned_clip: dict = field(default_factory=dict)  # the run's train_data ({} without a run): clip defaults
    img2img_base: str | None = None  # asked for the img2img baseline only


def _existing_dir(path: str, what: str, fix: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise VidSynthError(f"{what} {folder.absolute()} does not exist or is not a folder. {fix}")
    return folder.absolute()


def check_base(base: str) -> str:
    """A local SD folder must have a unet/ folder; anything else must look like a hub id (checked when loaded)."""
    local = Path(base).expanduser()
    if local.exists():
        if not (local / "unet").is_dir():
            raise VidSynthError(f"base model {local} has no unet/ folder. Point --base at an SD-1.x model folder")
        return str(local.absolute())
    if _HUB_ID.fullmatch(base) and not base.startswith("."):
        return base
    raise VidSynthError(
        f"base model {base} not found. Pass --base with the SD-1.x folder (./download_models.sh fetches SD-1.4)"
    )


def _base_model(base: str) -> str:
    """A base model the user named: ``tiny``, the offline tiny model's folder (built the first time), or checked."""
    return check_base(base) if base != TINY else resolve_model(base)


def _local_path(path: str, folder: Path) -> str:
    """A path a saved config names: as it is, else relative to the config's folder (runs can move)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists() or not (folder / given).exists():
        return str(given)
    return str(folder / given)


def _tuned_clip(folder: Path) -> dict:
    """``train_data`` of the tuning config saved in ``folder`` (VidSynth's or the original's), or {}."""
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        return {}
    data = OmegaConf.to_container(OmegaConf.load(config_file)).get("train_data") or {}
    if data.get("video_path"):
        data["video_path"] = _local_path(data["video_path"], folder)
    return data


def _from_run(run: Path, base: str | None) -> ModelSource:
    trained = run / RESULT_FILE
    if trained.is_file():
        tuned_base = resolve_model(base or read_trained_metadata(trained)["base_model"])
        if (run / "pipeline" / "model_index.json").is_file() and not base:
            return ModelSource("pipeline", str(run / "pipeline"), tuned_base)
        return ModelSource("trained", str(trained), check_base(_local_path(tuned_base, run)))
    if is_tuneavideo_folder(run):
        return ModelSource("tuneavideo", str(run))
    raise VidSynthError(
        f"{run} is not a tuning result: it has no {RESULT_FILE}. Pass the output_dir of a finished train.py "
        "run, or a pipeline folder with --pipeline"
    )


def _source(run: str | None, pipeline: str | None, base: str | None) -> tuple[ModelSource, dict]:
    if run and pipeline:
        raise VidSynthError("both --run and --pipeline were given. Pass only one of them")
    if run:
        folder = _existing_dir(run, "tuning result folder", "Pass the output_dir of a finished train.py run")
        return _from_run(folder, base), _tuned_clip(folder)
    if pipeline:
        folder = _existing_dir(pipeline, "pipeline folder", "Pass a folder with model_index.json")
        if is_tuneavideo_folder(folder):
            return ModelSource("tuneavideo", str(folder)), _tuned_clip(folder)
        if not (folder / "model_index.json").is_file():
            raise VidSynthError(f"{folder} has no model_index.json. Pass a folder written by save_pretrained")
        return ModelSource("pipeline", str(folder)), {}
    if base:
        return ModelSource("base", _base_model(base)), {}
    raise VidSynthError("no model given. Pass --run (a train.py result), --pipeline FOLDER, or --base with --video")


def resolve_model_source(
    run: str | None, pipeline: str | None, base: str | None, img2img: bool = False
) -> ResolvedModel:
    """The model ``--run``, ``--pipeline`` or ``--base`` names (``base`` with a run: the run's base is replaced).

    ``img2img``: also the plain SD-1.x model the per-frame baseline runs: ``base``, else the one the
    tuning run started from.
    """
    source, tuned = _source(run, pipeline, base)
    if not img2img:
        return ResolvedModel(source, tuned)
    if (base or source.base) is None:
        raise VidSynthError(
            f"the img2img baseline needs a plain SD-1.x model, and {source.path} is a full video pipeline. "
            "Pass --base with the SD-1.x folder it was made from"
        )
    return ResolvedModel(source, tuned, _base_model(base or source.base))
